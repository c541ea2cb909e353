"""Training steps on packed against padded batches, batch by batch, for ``PACK_FROM``.

MiniLM (the installed all-MiniLM-L6-v2) as tunelab trains it (bf16 autocast, tunelab's CPU
dropout masks, the last layer on the first token) takes the same batches, as tunelab's
sampler draws them (length-bucketed, labels mixed), once padded (``DataCollatorWithPadding``)
and once packed (``UnpaddedCollator``); every batch is stepped each way once a round (three
rounds, the order rotating) and the fastest of each kept. Each batch's padding factor
(longest row x rows / real tokens) stands beside the times, which is how
``tunelab.models.unpadded.PACK_FROM`` was chosen. A third time per batch steps the packed
batch as it was before attention ran in blocks by length (``unpadded.ATTENTION_GROUPS = 1``)
and before the last layer attended from the first query alone: ``blocks_speed_up`` is what
those two changes gave. A fourth steps the packed batch with the ``tokens x tokens`` mask
transformers builds from its restarting position ids, as it was before
:func:`tunelab.models.unpadded.padding_mask_only` dropped it: ``mask_speed_up``.

Usage::

    python benchmarks/unpadded_steps.py [--data en-sst2,zh-sentiment] [--batches 16] [--rounds 3]

Writes ``benchmarks/results/unpadded_steps.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from arms import drawn_batches, step_arguments

HERE = Path(__file__).resolve().parent
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RESULTS = HERE / "results" / "unpadded_steps.json"


def steps(data: str, batches: int, rounds: int) -> list[dict]:
    """Padding factor and milliseconds a step, padded and packed, for each batch."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
    )
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    from tunelab.models import unpadded
    from tunelab.models.fast_dropout import fast_cpu_dropout
    from tunelab.models.load import resolve_model_source
    from tunelab.models.unpadded import UnpaddedCollator, use_unpadded_batches

    source = resolve_model_source(MODEL)
    tokenizer, labels, features, drawn = drawn_batches(data, batches, source)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(labels), attn_implementation="sdpa"
    )
    fast_cpu_dropout(model)
    padded = DataCollatorWithPadding(tokenizer)
    packed = UnpaddedCollator(DataCollatorWithPadding(tokenizer), use_unpadded_batches(model))
    unpadded.PACK_FROM = 0.0  # every batch packed: the threshold is what is being chosen
    groups = unpadded.ATTENTION_GROUPS
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()

    from tunelab.models import first_token

    first_query = first_token._first_query_applies

    def seconds(batch: dict, one_block: bool = False, token_mask: bool = False) -> float:
        # one_block: packed as before attention blocks by length, the last layer whole;
        # token_mask: with the mask over all the packed tokens transformers would build
        first_token._first_query_applies = (lambda *_: False) if one_block else first_query
        AttentionMaskInterface.register(
            unpadded.UNPADDED, sdpa_mask if token_mask else unpadded.padding_mask_only
        )
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - started

    for indices in drawn[:2]:  # warm-up: the first steps of each kind set up their kernels
        chosen = [features[i] for i in indices]
        seconds(padded(chosen))
        seconds(packed(chosen))
    kinds = {}  # each batch four ways: padded, packed, as before the blocks, with the mask
    for number, indices in enumerate(drawn):
        chosen = [features[i] for i in indices]
        unpadded.ATTENTION_GROUPS = 1
        whole = packed(chosen)
        unpadded.ATTENTION_GROUPS = groups
        batch = packed(chosen)
        kinds[number] = {"padded": (padded(chosen), False, False), "packed": (batch, False, False),
                         "one_block": (whole, True, False),
                         "token_mask": (batch, False, True)}  # fmt: skip
    # rounds over every batch, the kinds' order rotating, the fastest of each kept: a slow
    # spell of a shared machine (seconds long) then spoils one round, not a comparison
    best: dict[int, dict[str, float]] = {number: {} for number in kinds}
    for round_number in range(rounds):
        for number, ways in kinds.items():
            names = list(ways)
            shift = (round_number + number) % len(names)
            for name in names[shift:] + names[:shift]:
                batch, one_block, token_mask = ways[name]
                taken = seconds(batch, one_block=one_block, token_mask=token_mask)
                best[number][name] = min(best[number].get(name, float("inf")), taken)
    found = []
    for number, indices in enumerate(drawn):
        lengths = [len(features[i]["input_ids"]) for i in indices]
        pad, pack, one, masked = (
            best[number][name] for name in ("padded", "packed", "one_block", "token_mask")
        )
        found.append({
            "padding_factor": round(max(lengths) * len(lengths) / sum(lengths), 3),
            "longest": max(lengths), "padded_ms": round(1e3 * pad, 1),
            "packed_ms": round(1e3 * pack, 1), "speed_up": round(pad / pack, 3),
            "packed_one_block_ms": round(1e3 * one, 1),
            "blocks_speed_up": round(one / pack, 3),
            "packed_token_mask_ms": round(1e3 * masked, 1),
            "mask_speed_up": round(masked / pack, 3),
        })  # fmt: skip
        print(data, found[-1], flush=True)
    return found


def main() -> None:
    args = step_arguments(__doc__.split("\n")[0])
    results: dict = {"model": MODEL, "batch_size": 32, "precision": "bf16 autocast"}
    for data in args.data.split(","):
        found = steps(data, args.batches, args.rounds)
        below = [s["speed_up"] for s in found if s["padding_factor"] < 1.10]
        above = [s["speed_up"] for s in found if s["padding_factor"] >= 1.10]
        results[data] = {
            "steps": found,
            "speed_up_below_1.10": [min(below), statistics.mean(below), max(below)]
            if below else None,
            "speed_up_from_1.10": [min(above), statistics.mean(above), max(above)]
            if above else None,
            # packed steps in attention blocks by length with the last layer's first query,
            # against one block and the whole last layer: the summed step times' ratio
            "blocks_speed_up": round(sum(s["packed_one_block_ms"] for s in found)
                                     / sum(s["packed_ms"] for s in found), 3),
            # packed steps without transformers' mask over all the tokens, against with it
            "mask_speed_up": round(sum(s["packed_token_mask_ms"] for s in found)
                                   / sum(s["packed_ms"] for s in found), 3),
        }  # fmt: skip
        print(data, "below 1.10 (min, mean, max):", results[data]["speed_up_below_1.10"],
              "from 1.10:", results[data]["speed_up_from_1.10"],
              "blocks:", results[data]["blocks_speed_up"],
              "mask:", results[data]["mask_speed_up"])  # fmt: skip
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""Training steps with every word-embedding row trained against the used rows alone.

MiniLM (the installed all-MiniLM-L6-v2) as tunelab trains it on the CPU (bf16 autocast,
tunelab's dropout masks, packed batches as its sampler draws them, gradient clipping at 1.0,
fused AdamW with weight decay 0.01) takes the same batches twice, as two copies of the same
model: one with the ordinary ``nn.Embedding`` (``training.embedding_rows: all``) and one with
:class:`tunelab.models.used_rows.UsedRowsEmbedding` over the token ids the sampled training
rows use (``used``, the default). Each round steps every batch with both, the order
alternating, and the fastest of each is kept per batch; three rounds. Both copies see the
same batches in the same order, so their losses must agree (to float rounding, which
bf16 autocast widens) and their trained weights too: the run checks both.

Usage::

    python benchmarks/embedding_rows_steps.py [--data en-sst2,zh-sentiment] [--batches 16]

Writes ``benchmarks/results/embedding_rows_steps.json``.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from arms import drawn_batches, step_arguments

HERE = Path(__file__).resolve().parent
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RESULTS = HERE / "results" / "embedding_rows_steps.json"


def steps(data: str, batches: int, rounds: int) -> dict:
    """Milliseconds a step each way for each batch, the losses and the weights compared."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
    )

    from tunelab.models.fast_dropout import fast_cpu_dropout
    from tunelab.models.load import resolve_model_source
    from tunelab.models.unpadded import UnpaddedCollator, use_unpadded_batches
    from tunelab.models.used_rows import (
        owe_weight_decay,
        restore_word_embeddings,
        train_used_rows_only,
    )

    source = resolve_model_source(MODEL)
    tokenizer, labels, features, drawn = drawn_batches(data, batches, source)
    used = sorted({token for row in features for token in row["input_ids"]})
    torch.manual_seed(0)
    every = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(labels), attn_implementation="sdpa"
    )
    models = {"all": every, "used": copy.deepcopy(every)}
    trained_rows = train_used_rows_only(models["used"], torch.tensor(used))
    optimizers, hooks = {}, []
    for name, model in models.items():
        fast_cpu_dropout(model)
        use_unpadded_batches(model)
        model.train()
        optimizers[name] = torch.optim.AdamW(
            model.parameters(), lr=1e-4, weight_decay=0.01, fused=True
        )
    hooks.append(owe_weight_decay(optimizers["used"], models["used"]))
    collate = UnpaddedCollator(DataCollatorWithPadding(tokenizer), use_unpadded_batches(every))
    prepared = [collate([features[i] for i in indices]) for indices in drawn]
    generators = {name: torch.Generator().manual_seed(1) for name in models}

    def step(name: str, batch: dict) -> tuple[float, float]:
        model, optimizer = models[name], optimizers[name]
        # each copy draws its dropout masks from its own generator state: the same masks
        state = torch.get_rng_state()
        torch.set_rng_state(generators[name].get_state())
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        taken = time.perf_counter() - started
        generators[name].set_state(torch.get_rng_state())
        torch.set_rng_state(state)
        return taken, float(loss.detach())

    best = [{} for _ in prepared]
    losses: dict[str, list[float]] = {name: [] for name in models}
    for round_number in range(rounds):
        for number, batch in enumerate(prepared):
            order = ["all", "used"] if (round_number + number) % 2 == 0 else ["used", "all"]
            for name in order:
                taken, loss = step(name, batch)
                best[number][name] = min(best[number].get(name, float("inf")), taken)
                losses[name].append(loss)
    for hook in hooks:
        hook.remove()
    restore_word_embeddings(models["used"])
    weights = {name: value.detach() for name, value in models["all"].named_parameters()}
    largest = max(
        float(
            (value.detach() - weights[name]).abs().max()
            / weights[name].abs().max().clamp_min(1e-12)
        )
        for name, value in models["used"].named_parameters()
    )
    found = [{"all_ms": round(1e3 * b["all"], 1), "used_ms": round(1e3 * b["used"], 1),
              "speed_up": round(b["all"] / b["used"], 3)} for b in best]  # fmt: skip
    gaps = [abs(a - b) for a, b in zip(losses["all"], losses["used"], strict=True)]
    result = {
        "vocabulary_rows": every.get_input_embeddings().num_embeddings,
        "trained_rows": trained_rows,
        "steps": found,
        "speed_up": round(sum(b["all"] for b in best) / sum(b["used"] for b in best), 3),
        "steps_per_copy": len(losses["all"]),
        "largest_loss_gap": round(max(gaps), 6),
        "first_loss_gap": round(gaps[0], 8),
        "largest_weight_gap_relative": round(largest, 6),
    }
    print(data, {k: v for k, v in result.items() if k != "steps"}, flush=True)
    return result


def main() -> None:
    args = step_arguments(__doc__.split("\n")[0])
    results: dict = {"model": MODEL, "batch_size": 32, "precision": "bf16 autocast",
                     "rounds": args.rounds}  # fmt: skip
    for data in args.data.split(","):
        results[data] = steps(data, args.batches, args.rounds)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

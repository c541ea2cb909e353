"""Preference tuning on real pairs: DPO, ORPO and KTO on zh-llama-mini with the en-zh-prefs
example, and tunelab's DPO speed against a plain TRL script.

Quality: each method with LoRA and full fine-tuning, from the starter (``zh-llama-mini``) and
from an SFT run on en-zh-l10n's training rows (whose split keeps every held-out message of
en-zh-prefs out of it). Per run, on held-out pairs before and after (``metrics.json``
``before.test`` and ``test``): the share of pairs whose chosen answer gets the higher mean
token log-probability, the implicit reward ``beta * (log p - log p_ref)`` accuracy and margin
(for full fine-tuning, which keeps no reference in the run, the benchmark scores the starting
model as the reference), the EOS-ending share of greedy answers, chrF, wall and CPU seconds.

Speed: the same DPO training (model, rows, batch size, epochs, beta, learning rate, precision
fp32, max length, threads) through ``tunelab train`` and through a hand-written script with
TRL's ``DPOTrainer`` and its defaults otherwise; each in its own process, back to back, for
its peak memory. Tokens are those of prompt+chosen and prompt+rejected as the chat template
renders them, counted once for both.

Usage::

    python benchmarks/preference.py [--train-rows 2000] [--test-rows 100] [--epochs 1]

Writes ``benchmarks/results/preference.json`` (after every run) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STARTER = ROOT / "models" / "zh-llama-mini"
PROMPT = "Translate into Chinese: "
OUT = Path(os.environ.get("PREFERENCE_RESULTS", HERE / "results" / "preference.json"))
KEYS = ("preference_accuracy", "logp_margin", "reward_accuracy", "reward_margin",
        "eos_ending_share", "chrf")  # fmt: skip


def build_data(folder: Path) -> Path:
    """en-zh-l10n and en-zh-prefs built fresh from this system's catalogs (same seed, so
    the same split of English messages)."""
    from tunelab.data.examples import build_example

    for name in ("en-zh-l10n", "en-zh-prefs"):
        if not (folder / name / "test.jsonl").is_file():
            build_example(name, folder / name)
    return folder


def sample(data: Path, args: argparse.Namespace, work: Path) -> dict[str, Path]:
    """Seeded training and test rows as files: pairs, the KTO rows of the same prompts, and
    en-zh-l10n rows for SFT."""
    prefs = data / "en-zh-prefs"
    train = pd.read_json(prefs / "train.jsonl", lines=True).sample(args.train_rows, random_state=0)
    test = pd.read_json(prefs / "test.jsonl", lines=True).sample(args.test_rows, random_state=0)
    validation = pd.read_json(prefs / "validation.jsonl", lines=True).sample(
        args.validation_rows, random_state=0
    )
    kto = pd.read_json(prefs / "kto" / "train.jsonl", lines=True)
    kto = kto[kto["prompt"].isin(set(train["prompt"]))]  # file order: good and bad mixed
    sft = pd.read_json(data / "en-zh-l10n" / "train.jsonl", lines=True).sample(
        args.sft_rows, random_state=0
    )
    files = {"train": train, "test": test, "validation": validation, "kto": kto, "sft": sft}
    for name, frame in files.items():
        frame.to_json(work / f"{name}.jsonl", orient="records", lines=True, force_ascii=False)
    return {name: work / f"{name}.jsonl" for name in files}


def config(args: argparse.Namespace, files: dict[str, Path], output: Path, model: str,
           method: str, lora: bool) -> dict:  # fmt: skip
    kto = method == "kto"
    return {
        "task": "preference",
        "output": str(output),
        "seed": 0,
        "data": {
            "train": str(files["kto" if kto else "train"]),
            "test": str(files["test"]),
            "validation": str(files["validation"]),
        },
        "model": {"name": model, "max_length": args.max_length},
        "training": {
            "epochs": args.epochs,
            "learning_rate": args.lora_learning_rate if lora else args.learning_rate,
            "batch_size": args.batch_size,
            "precision": "fp32",
            "threads": args.threads,
            "logging_steps": 1000,
            "early_stopping_patience": None,
        },
        "generation": {"max_new_tokens": args.max_new_tokens},
        "peft": {"method": "lora", "r": 16, "alpha": 32} if lora else {},
        "preference": {"method": method, "beta": args.beta},
    }


def reference_rewards(reference: str, tuned: Path, test: Path, beta: float,
                      max_length: int) -> dict[str, float]:  # fmt: skip
    """Implicit reward accuracy and margin of a fully tuned model against its starting model."""
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.tasks.preference import PreferenceTuning, _log_probs

    task = PreferenceTuning(preference={"method": "dpo", "beta": beta})
    frame = task.standardize(pd.read_json(test, lines=True))
    tokenizer = AutoTokenizer.from_pretrained(tuned)
    sums = {}
    for name, folder in (("tuned", tuned), ("reference", reference)):
        model = AutoModelForCausalLM.from_pretrained(folder)
        for answer, column in (("chosen", "target"), ("rejected", "rejected")):
            texts = frame[column].tolist()
            sums[name, answer] = _log_probs(model, tokenizer, task, frame, texts, max_length)["sum"]
    reward_c = beta * (sums["tuned", "chosen"] - sums["reference", "chosen"])
    reward_r = beta * (sums["tuned", "rejected"] - sums["reference", "rejected"])
    return {"reward_accuracy": float(np.mean(reward_c > reward_r)),
            "reward_margin": float(np.mean(reward_c - reward_r))}  # fmt: skip


def quality_run(args: argparse.Namespace, files: dict[str, Path], work: Path, name: str,
                model: str, method: str, lora: bool) -> dict:  # fmt: skip
    import tunelab

    output = work / name.replace(" ", "-").replace(",", "")
    started, cpu = time.time(), time.process_time()
    result = tunelab.train(config(args, files, output, model, method, lora))
    row = {"wall_seconds": round(time.time() - started, 1),
           "cpu_seconds": round(time.process_time() - cpu, 1)}  # fmt: skip
    metrics = result["metrics"]
    row["train_seconds"] = metrics["train"].get("optimizer_seconds")
    row["before"] = {k: metrics["before"]["test"].get(k) for k in KEYS}
    row["after"] = {k: metrics["test"].get(k) for k in KEYS}
    if not lora:
        tuned = Path(result["model_dir"])
        row["after"].update(
            reference_rewards(model, tuned, files["test"], args.beta, args.max_length)
        )
        row["before"].update(reward_accuracy=0.0, reward_margin=0.0)
        row["reward_against"] = "the starting model, scored by the benchmark"
    return row


def sft_run(args: argparse.Namespace, files: dict[str, Path], work: Path) -> tuple[str, dict]:
    """Instruction-tune the starter on en-zh-l10n rows; the model folder DPO starts from."""
    import tunelab

    started, cpu = time.time(), time.process_time()
    result = tunelab.train({
        "task": "causal-lm", "output": str(work / "sft"), "seed": 0,
        "data": {"train": str(files["sft"]), "split": {"validation": 0.05, "test": 0.0}},
        "model": {"name": "zh-llama-mini", "max_length": args.max_length},
        "training": {"epochs": args.sft_epochs, "learning_rate": 5e-4,
                     "batch_size": args.batch_size, "threads": args.threads,
                     "logging_steps": 1000, "precision": "fp32"},
        "generation": {"prefix": PROMPT, "max_new_tokens": args.max_new_tokens},
    })  # fmt: skip
    return str(result["model_dir"]), {
        "rows": args.sft_rows, "epochs": args.sft_epochs,
        "wall_seconds": round(time.time() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
    }  # fmt: skip


def pair_tokens(train: Path, max_length: int) -> int:
    """Tokens of prompt+chosen and prompt+rejected as the starter's chat template renders
    them (each cut at max_length, as both trainers cut them)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(STARTER)
    total = 0
    for row in pd.read_json(train, lines=True).to_dict("records"):
        for answer in (row["chosen"], row["rejected"]):
            chat = [{"role": "user", "content": row["prompt"]},
                    {"role": "assistant", "content": answer}]  # fmt: skip
            text = tokenizer.apply_chat_template(chat, tokenize=False)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            total += min(max_length, len(ids))
    return total


def speed_worker(kind: str, args: argparse.Namespace, files: dict[str, Path], work: Path) -> dict:
    """One DPO training (full fine-tuning) through tunelab or plain TRL, in this process."""
    import torch

    torch.set_num_threads(args.threads)
    if kind == "tunelab":
        import tunelab

        result = tunelab.train(config(args, files, work / "speed-tunelab", str(STARTER),
                                      "dpo", lora=False))  # fmt: skip
        seconds = result["metrics"]["train"]["optimizer_seconds"]
    else:
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import DPOConfig, DPOTrainer

        rows = pd.read_json(files["train"], lines=True)
        dataset = Dataset.from_list([
            {"prompt": [{"role": "user", "content": r["prompt"]}],
             "chosen": [{"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "assistant", "content": r["rejected"]}]}
            for r in rows.to_dict("records")
        ])  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(STARTER)
        tokenizer = AutoTokenizer.from_pretrained(STARTER)
        settings = DPOConfig(
            output_dir=str(work / "speed-trl"), per_device_train_batch_size=args.batch_size,
            num_train_epochs=args.epochs, learning_rate=args.learning_rate, beta=args.beta,
            max_length=args.max_length, bf16=False, fp16=False, seed=0, report_to=[],
            save_strategy="no", logging_steps=1000,
        )  # fmt: skip
        trainer = DPOTrainer(model=model, args=settings, train_dataset=dataset,
                             processing_class=tokenizer)  # fmt: skip
        seconds = trainer.train().metrics["train_runtime"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"train_seconds": seconds, "peak_memory_mb": round(peak, 1),
            "cpu_seconds": round(time.process_time(), 1)}  # fmt: skip


def speed(args: argparse.Namespace, files: dict[str, Path], work: Path) -> dict:
    tokens = pair_tokens(files["train"], args.max_length) * args.epochs
    rows: dict[str, dict] = {}
    for kind in ("tunelab", "trl"):
        found = subprocess.run(
            [sys.executable, __file__, "--worker", kind, "--work", str(work),
             *sys.argv[1:]],
            check=True, capture_output=True, text=True,
            env={**os.environ, "OMP_NUM_THREADS": str(args.threads)},
        )  # fmt: skip
        row = json.loads(found.stdout.strip().splitlines()[-1])
        row["tokens_per_second"] = round(tokens / row["train_seconds"], 1)
        row["pairs_per_second"] = round(args.train_rows * args.epochs / row["train_seconds"], 2)
        rows[kind] = row
    rows["ratio"] = {"tokens_per_second": round(
        rows["tunelab"]["tokens_per_second"] / rows["trl"]["tokens_per_second"], 2)}  # fmt: skip
    return rows


SETUPS = [
    (f"{method}, {'LoRA' if lora else 'full'}, from {start}", method, lora, start)
    for start, methods in (("starter", ("dpo", "orpo", "kto")), ("SFT", ("dpo",)))
    for method in methods
    for lora in (True, False)
]


def table(results: dict) -> str:
    lines = [
        "| run | pref. acc. before → after | log-p margin before → after | reward acc. | "
        "reward margin | EOS share before → after | chrF after | time (s) wall / CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, *_ in SETUPS:
        if name not in results.get("runs", {}):
            continue
        row = results["runs"][name]
        b, a = row["before"], row["after"]

        def number(value: float | None, digits: int = 2) -> str:
            return "-" if value is None else f"{value:.{digits}f}"

        lines.append(
            f"| {name} | {number(b['preference_accuracy'])} → {number(a['preference_accuracy'])}"
            f" | {number(b['logp_margin'])} → {number(a['logp_margin'])}"
            f" | {number(a.get('reward_accuracy'))} | {number(a.get('reward_margin'))}"
            f" | {number(b['eos_ending_share'])} → {number(a['eos_ending_share'])}"
            f" | {number(a['chrf'], 1)} | {row['wall_seconds']:.0f} / {row['cpu_seconds']:.0f} |"
        )
    if "speed" in results:
        lines += ["", "| DPO, full, fp32 | train seconds | tokens/s | pairs/s | peak RSS (MB) | "
                  "CPU seconds |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for kind in ("tunelab", "trl"):
            r = results["speed"][kind]
            lines.append(f"| {kind} | {r['train_seconds']:.1f} | {r['tokens_per_second']:,.0f} | "
                         f"{r['pairs_per_second']:.2f} | {r['peak_memory_mb']:,.0f} | "
                         f"{r['cpu_seconds']:.0f} |")  # fmt: skip
        lines.append(f"\ntunelab / TRL tokens/s: {results['speed']['ratio']['tokens_per_second']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=100)
    parser.add_argument("--validation-rows", type=int, default=32)
    parser.add_argument("--sft-rows", type=int, default=2000)
    parser.add_argument("--sft-epochs", type=float, default=1)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="full fine-tuning")
    parser.add_argument("--lora-learning-rate", type=float, default=2e-3)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--only",
        default="",
        help="runs whose name contains one of these |-separated parts ('speed': the speed rows)",
    )
    parser.add_argument("--worker", choices=("tunelab", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.worker:
        work = Path(args.work)
        files = {p.stem: p for p in work.glob("*.jsonl")}
        print(json.dumps(speed_worker(args.worker, args, files, work)))
        return
    results: dict = {"runs": {}}
    results["settings"] = {
        k: v for k, v in vars(args).items() if k not in ("worker", "work", "only")
    }
    work = Path(tempfile.mkdtemp(prefix="preference-", dir=ROOT / "runs"))
    files = sample(build_data(ROOT / "data" / "benchmark-preference"), args, work)

    def save() -> None:
        """Add this process's rows to the file: runs started side by side share it."""
        from benchmarks.results_file import locked, read_results, write_results

        with locked(OUT.parent):
            found = read_results(OUT)
            found.setdefault("runs", {}).update(results["runs"])
            found.update({k: v for k, v in results.items() if k != "runs"})
            write_results(OUT, found)

    def wanted(name: str) -> bool:
        return not args.only or any(part in name for part in args.only.split("|"))

    if wanted("speed"):
        results["speed"] = speed(args, files, work)
        save()
    sft: str | None = None
    for name, method, lora, start in SETUPS:
        if not wanted(name):
            continue
        if start == "SFT" and sft is None:
            sft, results["sft"] = sft_run(args, files, work)
        model = str(STARTER) if start == "starter" else str(sft)
        results["runs"][name] = quality_run(args, files, work, name, model, method, lora)
        save()
    from benchmarks.results_file import read_results

    print(table(read_results(OUT)))


if __name__ == "__main__":
    main()

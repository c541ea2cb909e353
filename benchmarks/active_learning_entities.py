"""Active learning vs random order for entity labelling, with People's Daily's own entity
tags (persons, places, organisations) as the oracle.

The zh-ner example's paragraphs (January 1998, the corpus's fixed split) are cut into
sentences at 。！？; the training sentences are the unlabelled pool (a seeded sample of
``--pool`` of them), the test sentences the held-out set. At each checkpoint a fresh CRF on
character window features, trained on the sentences labelled so far, is scored by entity F1
(seqeval, strict spans), and the characters of the labelled sentences are counted (uncertain
sentences are longer, so a sentence of active learning is more reading). Active: k-means
cold start (10 clusters), then the sentences whose least sure character has the lowest
marginal probability, retrained every 25 sentences.
Random: the same pool in random order. Three seeds each.

Latency, as ``benchmarks/active_learning.py`` measures it for classification: from handing a
label to the queue to the next suggestion, with 50,000 unlabelled sentences (every training
and test sentence, plus pairs of training sentences joined into new ones), 300 labels after
the cold start, a retrain every 20 labels (the CLI's default) included.

Usage::

    python benchmarks/active_learning_entities.py [--seeds 3] [--budget 500] [--pool 10000]
    python benchmarks/active_learning_entities.py --latency-only   # just the latency

Writes ``benchmarks/results/active_learning_entities.json`` and ``.png`` (``--latency-only``
replaces the ``latency`` entry of the JSON and keeps the rest).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data import peoples_daily as pd98
from tunelab.labelling.entities import EntityQueue, entity_f1, tags_to_spans
from tunelab.labelling.simulate import simulate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "active_learning_entities.json"
CHECKPOINTS = [25, 50, 100, 150, 200, 300, 400, 500]
TYPES = ["PER", "LOC", "ORG"]


def sentences(split: str) -> pd.DataFrame:
    """The split's sentences: ``text`` and their entity ``spans``."""
    lines = pd98.tagged_lines()
    rows = []
    for pairs, name in zip(lines, pd98.line_splits(len(lines)), strict=True):
        if name != split:
            continue
        row = pd98.ner_row(pairs)
        text = "".join(row["tokens"])
        start = 0
        for match in re.finditer(r"[。！？]+|$", text):
            end = match.end()
            piece = text[start:end]
            if piece.strip():
                spans = [(s - start, e - start, k) for s, e, k in tags_to_spans(row["tags"])
                         if start <= s and e <= end]  # fmt: skip
                rows.append({"text": piece, "spans": spans})
            start = end
            if end >= len(text):
                break
    return pd.DataFrame(rows)


def curves(seeds: int, budget: int, pool: int) -> dict:
    train, test = sentences("train"), sentences("test")
    marks = [c for c in CHECKPOINTS if c <= budget]
    result: dict = {"train_sentences": len(train), "pool": min(pool, len(train)),
                    "test": len(test), "checkpoints": marks, "runs": {}, "seconds": {}}  # fmt: skip
    for seed in range(seeds):
        sample = train.sample(n=min(pool, len(train)), random_state=seed).reset_index(drop=True)
        items = pd.DataFrame({"id": sample.index.astype(str), "text": sample["text"]})
        oracle = dict(zip(items["id"], sample["spans"], strict=True))
        for strategy in ("active", "random"):
            started = time.perf_counter()
            queue = EntityQueue(items, TYPES, strategy=strategy, retrain_every=25, clusters=10,
                                seed=seed)  # fmt: skip
            characters: list[int] = []

            def scorer(queue: EntityQueue, test: pd.DataFrame, counted: list = characters) -> Any:
                # active learning picks longer sentences: count the characters read too
                counted.append(sum(len(queue.texts[queue.row_of[i]]) for i in queue.labels))
                return entity_f1(queue, test)

            run = simulate(queue, oracle, budget, marks, test, scorer=scorer, metric="f1")
            f1 = [point["f1"] for point in run["curve"]]
            result.setdefault("characters", {}).setdefault(strategy, []).append(characters)
            seconds = round(time.perf_counter() - started)
            result["runs"].setdefault(strategy, []).append(f1)
            result["seconds"].setdefault(strategy, []).append(seconds)
            print(f"{strategy} seed {seed}: {f1} ({seconds} s)", flush=True)
    runs = {s: np.array(r, dtype=float) for s, r in result["runs"].items()}
    result["mean"] = {s: [round(float(v), 4) for v in r.mean(axis=0)] for s, r in runs.items()}
    result["sd"] = {s: [round(float(v), 4) for v in r.std(axis=0, ddof=1)] if len(r) > 1
                    else [0.0] * len(marks) for s, r in runs.items()}  # fmt: skip
    result["mean_characters"] = {
        s: [round(float(v)) for v in np.mean(np.array(c, dtype=float), axis=0)]
        for s, c in result["characters"].items()
    }
    target = result["mean"]["random"][-1]
    reached = [n for n, f1 in zip(marks, result["mean"]["active"], strict=True) if f1 >= target]
    result["random_f1_at_budget"] = target
    result["active_sentences_to_reach_it"] = reached[0] if reached else None
    return result


def latency(
    total: int = 50_000, labels: int = 300, retrain_every: int = 20, background: bool = True
) -> dict:
    """Milliseconds from a label to the next suggestion (median, p95, worst) with ``total``
    unlabelled sentences, the spans of People's Daily answering; retraining in a thread
    (``background``, as the Label page and ``tunelab label run`` do) or before the label
    returns."""
    train, test = sentences("train"), sentences("test")
    pool = pd.concat([train, test], ignore_index=True)
    texts, spans = list(pool["text"]), list(pool["spans"])
    rng = np.random.default_rng(0)
    while len(texts) < total:  # new sentences: two training ones joined, spans shifted
        a, b = (train.iloc[int(i)] for i in rng.integers(len(train), size=2))
        texts.append(a["text"] + b["text"])
        shift = len(a["text"])
        spans.append([*a["spans"], *((s + shift, e + shift, k) for s, e, k in b["spans"])])
    texts, spans = texts[:total], spans[:total]
    items = pd.DataFrame({"id": [str(i) for i in range(total)], "text": texts})
    started = time.perf_counter()
    queue = EntityQueue(items, TYPES, retrain_every=retrain_every, clusters=10,
                        background=background)  # fmt: skip
    setup = time.perf_counter() - started
    oracle = dict(zip(items["id"], spans, strict=True))
    started = time.perf_counter()
    run = simulate(queue, oracle, labels)
    queue.wait_for_model()
    from active_learning import latency_figures

    return {"unlabelled": total, "labels": labels, "retrain_every": retrain_every,
            "background": background, "setup_s": round(setup, 1),
            "labelling_s": round(time.perf_counter() - started, 1),
            **latency_figures(run["latency_ms"])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--latency-only", action="store_true",
                        help="measure the latency alone; keep the curves")  # fmt: skip
    args = parser.parse_args()
    from results_file import read_results, write_results

    result = read_results(RESULTS) if args.latency_only else curves(args.seeds, args.budget,
                                                                      args.pool)  # fmt: skip
    result["latency"] = latency(background=True)
    result["latency_synchronous_retrains"] = latency(background=False)
    print(result["latency"], result["latency_synchronous_retrains"], flush=True)
    if args.latency_only:
        write_results(RESULTS, result)
        return
    from active_learning import plot  # the sentiment benchmark's chart, relabelled

    result["plot"] = plot(result, RESULTS.with_suffix(".png"), "labelled sentences",
                          "test entity F1 (People's Daily PER/LOC/ORG)",
                          f"CRF tagger: active vs random ({args.seeds} seeds)")  # fmt: skip
    write_results(RESULTS, result)
    print("| sentences | " + " | ".join(map(str, result["checkpoints"])) + " |")
    for strategy in ("active", "random"):
        print(f"| {strategy} | " + " | ".join(f"{v:.3f}" for v in result["mean"][strategy]) + " |")
    for strategy in ("active", "random"):
        print(f"| {strategy} characters | "
              + " | ".join(map(str, result["mean_characters"][strategy])) + " |")  # fmt: skip
    print(f"random at {result['checkpoints'][-1]}: {result['random_f1_at_budget']}; active "
          f"reaches it at {result['active_sentences_to_reach_it']}")  # fmt: skip


if __name__ == "__main__":
    main()

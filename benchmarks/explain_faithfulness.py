"""Are the explanations faithful? Deleting the top-attributed tokens vs. random and attention.

On zh-sentiment with a zh-bert-mini classifier (``examples/zh-sentiment.yaml``, trained into
``runs/bench-explain`` unless a model is there already), a seeded sample of test texts
(correctly and incorrectly predicted alike) is explained with integrated gradients toward the
predicted class. For each k, the k tokens are deleted from the token-id sequence (special
tokens kept; with this character-level tokenizer that is deleting the characters from the
text) and the model is run again:

- **integrated gradients**: the k tokens with the highest attribution;
- **random**: k random ordinary tokens, several seeded draws per text (their mean);
- **attention**: the k tokens the [CLS] token attends to most (last layer, mean of heads).

The score is the drop in the predicted class's probability. Reported per method and k: the
mean drop with a bootstrap 95% interval over texts, and the share of texts where the method's
drop beats the mean random drop. A text takes part at a given k only if it has more than k
ordinary tokens.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/explain_faithfulness.py

Writes ``benchmarks/results/explain_faithfulness.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUN = ROOT / "runs" / "bench-explain"
KS: list[int | float] = [1, 3, 5, 0.1, 0.2]  # ints: tokens; floats: share of the text's tokens
METHODS = ("integrated gradients", "attention", "random")


def trained_run() -> Path:
    """The benchmark's classifier, trained with the example config if it is not there yet."""
    if not (RUN / "model" / "config.json").is_file():
        command = [sys.executable, "-m", "tunelab.cli", "train",
                   str(ROOT / "examples" / "zh-sentiment.yaml"), "--output", str(RUN)]  # fmt: skip
        subprocess.run(command, check=True, cwd=ROOT)
    return RUN


def probabilities(model, tokenizer, sequences: list[list[int]], batch_size: int = 128):
    """Softmax outputs for token-id sequences (padded per batch)."""
    import torch

    rows = []
    for start in range(0, len(sequences), batch_size):
        batch = [{"input_ids": ids} for ids in sequences[start : start + batch_size]]
        inputs = tokenizer.pad(batch, return_tensors="pt")
        with torch.no_grad():
            rows.append(torch.softmax(model(**inputs).logits.float(), dim=-1).numpy())
    return np.concatenate(rows)


def k_of(k: int | float, ordinary: int) -> int:
    return k if isinstance(k, int) else max(1, round(k * ordinary))


def k_name(k: int | float) -> str:
    return f"k={k}" if isinstance(k, int) else f"k={int(k * 100)}%"


def bootstrap(values: np.ndarray, rng: np.random.Generator, rounds: int = 2000) -> list[float]:
    means = rng.choice(values, size=(rounds, len(values))).mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=240)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--random-draws", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import pandas as pd

    import tunelab
    from tunelab.explain import explain_loaded

    model, tokenizer, task, max_length = tunelab.load_trained(trained_run())
    test = pd.read_csv(ROOT / "data" / "zh-sentiment" / "test.csv")
    sample = test.sample(n=min(args.texts, len(test)), random_state=args.seed)
    started = time.time()
    explanations = explain_loaded(model, tokenizer, task, sample["text"].tolist(),
                                  steps=args.steps, max_length=max_length)  # fmt: skip
    explain_seconds = time.time() - started

    rng = random.Random(args.seed)
    sequences: list[list[int]] = []
    plan = []  # (text, k, method, draw) for each sequence after the originals
    originals = []
    for number, item in enumerate(explanations):
        ids = tokenizer.convert_tokens_to_ids(item["tokens"])
        originals.append(ids)
        ordinary = [i for i, special in enumerate(item["special"]) if not special]
        by_attribution = sorted(ordinary, key=lambda i: -item["attributions"][i])
        by_attention = sorted(ordinary, key=lambda i: -item["attention"]["matrix"][0][i])
        for k in KS:
            size = k_of(k, len(ordinary))
            if size >= len(ordinary):
                continue
            chosen = {
                "integrated gradients": [by_attribution[:size]],
                "attention": [by_attention[:size]],
                "random": [rng.sample(ordinary, size) for _ in range(args.random_draws)],
            }
            for method, draws in chosen.items():
                for removed in draws:
                    gone = set(removed)
                    sequences.append([t for i, t in enumerate(ids) if i not in gone])
                    plan.append((number, k, method))
    label_ids = [model.config.label2id[item["predicted"]] for item in explanations]
    before = probabilities(model, tokenizer, originals)[np.arange(len(originals)), label_ids]
    after = probabilities(model, tokenizer, sequences)

    drops: dict[tuple, list[float]] = {}
    for (number, k, method), row in zip(plan, after, strict=True):
        drop = float(before[number] - row[label_ids[number]])
        drops.setdefault((k, method, number), []).append(drop)
    gold = sample["label"].astype(str).tolist()
    correct = np.array([item["predicted"] == g for item, g in zip(explanations, gold, strict=True)])
    boot = np.random.default_rng(args.seed)
    results = []
    for k in KS:
        texts = sorted({n for (kk, _, n) in drops if kk == k})
        mean_drop = {m: np.array([np.mean(drops[(k, m, n)]) for n in texts]) for m in METHODS}
        row = {"k": k_name(k), "texts": len(texts)}
        for method in METHODS:
            values = mean_drop[method]
            row[method] = {
                "mean_drop": round(float(values.mean()), 4),
                "ci95": bootstrap(values, boot),
                "mean_drop_correct": round(float(values[correct[texts]].mean()), 4),
                "mean_drop_incorrect": round(float(values[~correct[texts]].mean()), 4),
            }
            if method != "random":
                row[method]["beats_random"] = round(float((values > mean_drop["random"]).mean()), 4)
        row["ig_minus_random_ci95"] = bootstrap(
            mean_drop["integrated gradients"] - mean_drop["random"], boot
        )
        results.append(row)

    deltas = np.abs([item["delta"] for item in explanations])
    summary = {
        "model": "zh-bert-mini fine-tuned on zh-sentiment (examples/zh-sentiment.yaml)",
        "texts": len(explanations),
        "correct": int(correct.sum()),
        "incorrect": int((~correct).sum()),
        "steps": args.steps,
        "random_draws": args.random_draws,
        "seed": args.seed,
        "deletion": "tokens removed from the token-id sequence, special tokens kept",
        "explain_seconds_per_text": round(explain_seconds / len(explanations), 3),
        "abs_delta_median": round(float(np.median(deltas)), 6),
        "abs_delta_max": round(float(deltas.max()), 6),
        "results": results,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "explain_faithfulness.json").write_text(
        json.dumps(summary, indent=2) + "\n"
    )

    print(f"{summary['texts']} test texts ({summary['correct']} correct, "
          f"{summary['incorrect']} wrong), {args.steps} steps, "
          f"{summary['explain_seconds_per_text']} s per explanation, "
          f"median |delta| {summary['abs_delta_median']}")  # fmt: skip
    print(
        "\n| k | texts | IG drop (95% CI) | attention drop | random drop | IG beats random |"
        " attention beats random |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in results:
        ig, att, rnd = row["integrated gradients"], row["attention"], row["random"]
        print(f"| {row['k']} | {row['texts']} | {ig['mean_drop']:.3f} ({ig['ci95'][0]:.3f}–"
              f"{ig['ci95'][1]:.3f}) | {att['mean_drop']:.3f} | {rnd['mean_drop']:.3f} "
              f"({rnd['ci95'][0]:.3f}–{rnd['ci95'][1]:.3f}) | {ig['beats_random']:.0%} | "
              f"{att['beats_random']:.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()

"""Defaults on data nobody tuned them for: the plain command, no flags, before and after.

Nine public text-classification sets tunelab was never tuned on (``benchmarks/data/unseen``:
Chinese hotel and takeaway reviews, Chinese news headlines in 15 topics, English SMS spam,
English Reddit comments with one or more of seven emotions (GoEmotions), English
sentence pairs labelled for entailment (SICK), and three TweetEval tasks (emotion, irony,
hate speech; the last with a test set collected apart from its training rows); see each
DATA_CARD.md and ``prepare*.py`` for how to bring them), each run as a new user runs it:
``tunelab train --data train --validation validation --test test`` with nothing else but the
one flag the command asks for where the data leaves a choice open (SICK's
``--label-column``). On the multi-label set, accuracy is subset accuracy (every label of a
row right) and micro-F1 is kept beside macro-F1.

Arms:

- ``before``: the defaults until issue 18 (``scratch-bert`` at learning rate 5e-5), written
  out as flags, since the new defaults replaced them;
- ``default``: no flags at all (``model.name: auto``, ``training.learning_rate: auto``);
- ``scratch``: ``--model scratch-bert`` at the new automatic rate (what the rate alone buys);
- ``balanced`` / ``unweighted``: the default with ``training.class_weights`` forced, to see
  whether weighting helps at milder imbalance than the ``auto`` threshold (3:1).

Every run also fits tunelab's linear baseline (TF-IDF + logistic regression) on its own
training split, so the baseline column comes from the same files as the model's.

Usage::

    python benchmarks/default_settings.py [--sets a,b] [--arms before,default] [--seeds 0,1,2]
        [--threads 1]

Runs each arm and seed once (a rerun skips what ``benchmarks/results/default_settings.json``
holds) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_file import locked, mean_sd, read_results, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# the prepared files: in the steering repository's shared/ folder where it holds them, else
# where prepare.py writes them (they are not committed: see the data cards)
SHARED = ROOT.parent / "shared" / "data" / "unseen"
DATA = SHARED if SHARED.is_dir() else HERE / "data" / "unseen"
WORK = ROOT / "runs" / "benchmarks" / "default_settings"
RESULTS = HERE / "results" / "default_settings.json"
SETS = ("chnsenticorp_htl", "waimai_10k", "tnews", "sms_spam", "goemotions_ekman", "sick",
        "tweeteval_emotion", "tweeteval_irony", "tweeteval_hate")  # fmt: skip
# the one flag a set's plain command asks for (SICK holds two columns that could be labels)
ASKED = {"sick": ["--label-column", "entailment_judgment"]}
ARMS = {
    "before": ["--model", "scratch-bert", "--set", "training.learning_rate=5e-5"],
    "default": [],
    "scratch": ["--model", "scratch-bert"],
    "balanced": ["--set", "training.class_weights=balanced"],
    "unweighted": ["--set", "training.class_weights=none"],
}


def run(name: str, arm: str, seed: int, threads: int | None) -> dict:
    """One ``tunelab train`` process; what its metrics.json and data_report.json say."""
    folder = DATA / name
    out = WORK / f"{name}-{arm}-{seed}"
    command = [
        sys.executable, "-m", "tunelab.cli", "train",
        "--data", str(folder / "train.csv.gz"),
        "--validation", str(folder / "validation.csv.gz"),
        "--test", str(folder / "test.csv.gz"),
        "--output", str(out), "--overwrite", "--seed", str(seed), *ARMS[arm],
        *ASKED.get(name, []),
    ]  # fmt: skip
    if threads:  # two queues side by side, one core each: more runs per hour on 2 cores
        command += ["--set", f"training.threads={threads}"]
    started = time.time()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    report = json.loads((out / "data_report.json").read_text())
    test, baseline = metrics["test"], metrics.get("baseline", {}).get("test", {})
    return {
        "model": (report.get("model_choice") or {}).get("name") or ARMS[arm][1],
        "learning_rate": (report.get("learning_rate") or {}).get("value") or 5e-5,
        # multi-label runs report subset accuracy and micro-F1 (their main metric)
        "accuracy": test.get("accuracy", test.get("subset_accuracy")),
        "f1_macro": test["f1_macro"],
        "f1_micro": test.get("f1_micro") if "subset_accuracy" in test else None,
        "predicted_classes": test.get("predicted_classes"),
        "validation_f1_macro": (metrics.get("validation") or {}).get("f1_macro"),
        "baseline_accuracy": baseline.get("accuracy", baseline.get("subset_accuracy")),
        "baseline_f1_macro": baseline.get("f1_macro"),
        "baseline_f1_micro": baseline.get("f1_micro") if "subset_accuracy" in test else None,
        "warnings": metrics.get("warnings", []),
        "seconds": round(time.time() - started, 1),
    }


def table(results: dict) -> str:
    """Markdown: per set and arm, mean ± sd of test accuracy and macro-F1, and warnings (the
    run's verdict that it learned nothing, and that its test rows differ from validation's)."""
    lines = [
        "| set | arm | model | rate | accuracy | macro-F1 | baseline acc / F1 | learned nothing "
        "| test unlike validation | min/run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arms in results.items():
        for arm, seeds in arms.items():
            rows = list(seeds.values())
            if not rows:
                continue
            # the run's own verdict: one class (or no label) predicted, or chance-level macro-F1
            verdicts = ("one class", "chance", "finds no label")
            shift = "far below validation's"  # the test rows differ: not a verdict on learning
            warned = sum(
                any(v in w and shift not in w for v in verdicts for w in r["warnings"])
                for r in rows
            )
            # runs from before the check (no validation score kept) show a dash
            shifted = (
                f"{sum(any(shift in w for w in r['warnings']) for r in rows)}/{len(rows)}"
                if all("validation_f1_macro" in r for r in rows)
                else "-"
            )
            micro = [r["f1_micro"] for r in rows if r.get("f1_micro") is not None]
            lines.append(
                f"| {name} | {arm} | {rows[0]['model']} | {rows[0]['learning_rate']:g} | "
                f"{mean_sd([r['accuracy'] for r in rows])} | "
                f"{mean_sd([r['f1_macro'] for r in rows])}"
                # multi-label sets: micro-F1, their main metric, beside macro-F1
                + (f" (micro {mean_sd(micro)})" if len(micro) == len(rows) else "")
                + f" | {rows[0]['baseline_accuracy']:.3f} / {rows[0]['baseline_f1_macro']:.3f} | "
                f"{warned}/{len(rows)} | {shifted} | "
                f"{statistics.mean(r['seconds'] for r in rows) / 60:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--arms", default="before,default")
    parser.add_argument("--seeds", default="0,1,2", help="seeds to run, e.g. 0,1,2")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="results file (another one re-measures a changed default beside "
                        "the committed figures)")  # fmt: skip
    args = parser.parse_args()
    for name in args.sets.split(","):
        for arm in args.arms.split(","):
            for seed in args.seeds.split(","):
                if seed in read_results(args.results).get(name, {}).get(arm, {}):
                    continue
                row = run(name, arm, int(seed), args.threads)
                print(name, arm, seed, json.dumps(row), flush=True)
                with locked(WORK):  # parallel queues each add their own rows
                    results = read_results(args.results)
                    results.setdefault(name, {}).setdefault(arm, {})[seed] = row
                    write_results(args.results, results)
    print(table(read_results(args.results)))


if __name__ == "__main__":
    main()

"""KTO on unbalanced feedback: TRL's equal loss weights against tunelab's balance.

Feedback that users export is rarely half good and half bad: thumbs-up logs are mostly good
answers, bug reports mostly bad ones. KTO's loss averages over the answers of a batch, so the
rarer kind barely trains; the KTO paper (its Eq. 8) advises weights that make the weighted
good answers 1 to 4/3 times the bad ones, and TRL warns outside that range but keeps its
weights at 1 and 1. tunelab, with neither ``preference.desirable_weight`` nor
``undesirable_weight`` given, raises the rarer kind's weight to bring the ratio to the
middle of the range, 7/6.

Two training files from the same en-zh-prefs prompts, on zh-llama-mini with LoRA (as
``benchmarks/kto_order.py``): **mostly good** (every prompt's chosen translation as a good
answer, a quarter of the prompts' corrupted one as a bad answer: 4 good to 1 bad) and
**mostly bad** (the reverse: 1 good to 4 bad). Each trained with weights 1 and 1 and with
tunelab's balance, scored on the same held-out pairs: preference accuracy (the chosen
answer's mean token log-probability higher), the log-probability margin and the implicit
reward accuracy against the adapter-free base.

``--rare`` sets the rarer kind's share (0.25: 4 to 1); near 1 (0.9167: 352 good answers to 384
bad, as a near-balanced file splits) it asks whether the balance costs anything where the
counts are close, written with ``--files "mostly bad" --out
benchmarks/results/kto_balance_near.json``.

Usage::

    python benchmarks/kto_balance.py [--train-rows 384] [--test-rows 200] [--seeds 0 1]
        [--rare 0.25] [--files "mostly good" "mostly bad"] [--weights "1 and 1" balanced]

Writes ``benchmarks/results/kto_balance.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from kto_order import answers, train_kto, write_results  # noqa: E402  (its data and run)

RARE = 0.25  # the rarer kind: this many answers for each of the common kind
FILES = ("mostly good", "mostly bad")
WEIGHTS = {"1 and 1": {"desirable_weight": 1.0, "undesirable_weight": 1.0}, "balanced": {}}


def files(
    work: Path, train_rows: int, test_rows: int, seed: int, rare_share: float = RARE
) -> dict[str, Path]:
    """The mostly-good and mostly-bad single answers of the same prompts, and the held-out
    pairs, written under ``work``."""
    _, test, good, bad = answers(train_rows, test_rows, seed)
    rare = round(train_rows * rare_share)
    written = {
        "mostly good": pd.concat([good, bad.sample(rare, random_state=seed)]),
        "mostly bad": pd.concat([good.sample(rare, random_state=seed), bad]),
        "test": test,
    }
    paths = {}
    for name, frame in written.items():
        paths[name] = work / f"{name.replace(' ', '-')}.jsonl"
        columns = ["prompt", "completion", "label"] if name != "test" else list(frame.columns)
        frame[columns].to_json(paths[name], orient="records", lines=True, force_ascii=False)
    return paths


def run(data: dict[str, Path], train: str, weights: str, seed: int, work: Path) -> dict:
    output = work / f"{train}-{weights}-{seed}".replace(" ", "-")
    return train_kto(data[train], data["test"], output, seed, **WEIGHTS[weights])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=384, help="training prompts")
    parser.add_argument("--test-rows", type=int, default=200, help="held-out pairs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--weights", nargs="+", choices=list(WEIGHTS), default=list(WEIGHTS))
    parser.add_argument("--files", nargs="+", choices=FILES, default=list(FILES))
    parser.add_argument("--rare", type=float, default=RARE,
                        help="answers of the rarer kind for each of the common kind")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE / "results" / "kto_balance.json")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for seed in args.seeds:
            data = files(work, args.train_rows, args.test_rows, seed, args.rare)
            for train in args.files:
                for weights in args.weights:
                    name = f"{train}, {weights}, seed {seed}"
                    results[name] = run(data, train, weights, seed, work)
                    print(name, json.dumps(results[name]), flush=True)
    about = {"what": __doc__.split("\n")[0], "train_prompts": args.train_rows,
             "rare_share": args.rare, "test_pairs": args.test_rows}  # fmt: skip
    write_results(args.out, about, results, "training file, weights, seed")


if __name__ == "__main__":
    main()

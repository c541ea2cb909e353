"""The learning rate for image and audio models trained from random weights (scratch-vit,
scratch-audio), which took scratch-bert's 5e-4 without a measurement of their own.

Each set is trained with the plain command (``tunelab train --data FOLDER --seed S``) at each
rate (``--set training.learning_rate=R``), seeds and rates in a rotating order, and the test
macro-F1, the linear baseline's, the steps and the wall time are kept. Two kinds of set:

* ``tunelab data example`` folders (``digits``, ``zh-lookalikes``, ``spoken-commands``): the
  sets the rate is chosen on;
* folders under ``benchmarks/data/unseen`` (``fsdd``, ``fsdd_speaker``, built by
  ``prepare_fsdd.py``): real recordings the choice is then checked on.

Usage::

    python benchmarks/scratch_media_rate.py --sets digits,zh-lookalikes,spoken-commands
        --rates 5e-4,1e-3,2e-3 [--seeds 0,1] [--out NAME]

Writes ``benchmarks/results/<NAME>.json`` (default ``scratch_media_rate``) and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from arms import machine
from min_steps_scratch import run_arms, run_tunelab, summary_table
from results_file import write_results

HERE = Path(__file__).resolve().parent
UNSEEN = HERE / "data" / "unseen"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="digits,zh-lookalikes,spoken-commands")
    parser.add_argument("--rates", default="5e-4,1e-3,2e-3")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", default="scratch_media_rate")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rates = args.rates.split(",")
    results: dict = {"machine": machine(), "rates": rates, "sets": {}}
    with tempfile.TemporaryDirectory(prefix="scratch-media-rate-") as tmp:
        for name in args.sets.split(","):
            folder = UNSEEN / name
            if not folder.is_dir():
                folder = Path(tmp) / name
                run_tunelab("data", "example", name, "--out", str(folder))
            arms = {rate: ["--set", f"training.learning_rate={rate}"] for rate in rates}
            results["sets"][name] = run_arms(name, folder, seeds, arms, Path(tmp))
    write_results(HERE / "results" / f"{args.out}.json", results)
    summary_table(results["sets"], "learning rate")


if __name__ == "__main__":
    main()

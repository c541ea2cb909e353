"""scratch-audio's window: the training clips' 99th percentile (the default) against the
longest clip (the rule before), on real recordings nobody tuned on.

The Free Spoken Digit Dataset (``benchmarks/data/unseen/prepare_fsdd.py`` builds it: the
official split, and one speaker held out) has short clips (median 0.42 s) and one of 2.3 s.
Each folder is trained with the plain command (``tunelab train --data FOLDER --seed S``) and
with ``--set audio.scratch_seconds=N``, N the longest training clip rounded up to whole
seconds, seeds alternating; the test macro-F1, the MFCC baseline's, the steps and the wall
time are kept. spoken-commands (every clip exactly 1 s) is unchanged by the rule and left out.

Usage::

    python benchmarks/audio_window.py [--sets fsdd,fsdd_speaker] [--seeds 0,1,2]

Writes ``benchmarks/results/audio_window.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import soundfile as sf

from arms import machine
from min_steps_scratch import run_arms, summary_table
from results_file import write_results

HERE = Path(__file__).resolve().parent
UNSEEN = HERE / "data" / "unseen"
RESULTS = HERE / "results" / "audio_window.json"


def longest_seconds(folder: Path) -> int:
    """The longest training clip of a split folder, rounded up to whole seconds."""
    longest = max(sf.info(str(path)).duration for path in (folder / "train").rglob("*.wav"))
    return math.ceil(longest - 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="fsdd,fsdd_speaker")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict = {"machine": machine(), "sets": {}}
    for name in args.sets.split(","):
        folder = UNSEEN / name
        if not (folder / "train").is_dir():
            raise SystemExit(f"{folder}: not built; run benchmarks/data/unseen/prepare_fsdd.py")
        longest = longest_seconds(folder)
        arms = {f"longest clip ({longest} s)": ["--set", f"audio.scratch_seconds={longest}"],
                "99th percentile (plain command)": []}  # fmt: skip
        results["sets"][name] = run_arms(name, folder, seeds, arms)
    write_results(RESULTS, results)
    summary_table(results["sets"], "window")


if __name__ == "__main__":
    main()

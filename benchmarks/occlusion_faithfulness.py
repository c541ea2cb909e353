"""Are occlusion explanations of images and clips faithful? A deletion test on models the
plain command trained on data nobody tuned the explanations on.

For each test file the predicted label is explained (``tunelab explain``'s occlusion: 8 x 8
cells of an image, 16 segments of a clip). Then a quarter of the parts are hidden at once:
the quarter the explanation ranks highest, and three random quarters. A faithful explanation
makes the predicted label's probability fall further when its top parts are hidden than when
random ones are. Kept per set: the mean fall for each, the share of files where the top
quarter beats the random mean, and the seconds an explanation takes.

Sets: scikit-learn's digits (``tunelab data example digits``, scratch-vit) and the Free Spoken
Digit Dataset (``benchmarks/data/unseen/prepare_fsdd.py``, scratch-audio), each trained with
the plain command into ``runs/bench-*`` if not there yet.

Usage::

    python benchmarks/occlusion_faithfulness.py [--files 100]

Writes ``benchmarks/results/occlusion_faithfulness.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from arms import machine
from results_file import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SETS = {
    "digits (scratch-vit)": (ROOT / "data" / "digits", ROOT / "runs" / "bench-digits"),
    "fsdd (scratch-audio)": (HERE / "data" / "unseen" / "fsdd", ROOT / "runs" / "bench-fsdd"),
}
RANDOM_DRAWS = 3


def ensure_run(data: Path, run: Path) -> None:
    """Train with the plain command if ``run`` has no model yet (digits: made first)."""
    if (run / "model" / "config.json").is_file():
        return
    if data.name == "digits" and not data.is_dir():
        subprocess.run([sys.executable, "-m", "tunelab.cli", "data", "example", "digits",
                        "--out", str(data)], check=True)  # fmt: skip
    if not (data / "test").is_dir():
        raise SystemExit(f"{data}: not built; see this script's docstring")
    subprocess.run([sys.executable, "-m", "tunelab.cli", "train", "--data", str(data), "--out",
                    str(run), "--overwrite"], check=True, cwd=ROOT)  # fmt: skip


def measure(data: Path, run: Path, files: int, rng: np.random.Generator) -> dict:
    """The deletion test on the first ``files`` test files (sorted by path) of one set."""
    from tunelab.api import load_trained
    from tunelab.explain.explainer import media_frame
    from tunelab.explain.occlusion import explain_files, hide_parts, label_probabilities

    model, processor, task, _ = load_trained(run)
    frame = media_frame(task, input=data / "test")
    frame = frame.sort_values(task.text_column).iloc[:files]
    started = time.perf_counter()
    explained = explain_files(model, processor, task, frame)
    seconds = (time.perf_counter() - started) / len(frame)
    top_falls, random_falls = [], []
    for record, path in zip(explained, frame[task.text_column], strict=True):
        if "cells" in record:
            parts, values = record["grid"], np.asarray(record["cells"]).reshape(-1)
        else:
            values = np.asarray([value for _, _, value in record["segments"]])
            parts = len(values)
        quarter = len(values) // 4
        decoded = task.decode(path, processor)
        hidden = [np.argsort(-values)[:quarter].tolist()]
        hidden += [rng.choice(len(values), quarter, replace=False).tolist()
                   for _ in range(RANDOM_DRAWS)]  # fmt: skip
        variants = [decoded] + [hide_parts(decoded, parts, which) for which in hidden]
        probabilities = label_probabilities(model, processor, task, variants)
        label = task.labels.index(record["predicted"])
        falls = probabilities[0, label] - probabilities[1:, label]
        top_falls.append(float(falls[0]))
        random_falls.append(float(falls[1:].mean()))
    top, rand = np.asarray(top_falls), np.asarray(random_falls)
    return {
        "files": len(frame),
        "parts": len(values),
        "hidden": quarter,
        "mean_fall_top_quarter": round(float(top.mean()), 4),
        "mean_fall_random_quarter": round(float(rand.mean()), 4),
        "share_top_beats_random": round(float((top > rand).mean()), 3),
        "seconds_per_explanation": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    results: dict = {"machine": machine(), "sets": {}}
    for name, (data, run) in SETS.items():
        ensure_run(data, run)
        results["sets"][name] = measure(data, run, args.files, rng)
        print(name, results["sets"][name], flush=True)
    write_results(HERE / "results" / "occlusion_faithfulness.json", results)
    print(
        "\n| set | parts (hidden) | probability fall, top quarter | random quarter | "
        "files where top > random | s/explanation |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, found in results["sets"].items():
        top, rand = found["mean_fall_top_quarter"], found["mean_fall_random_quarter"]
        share, took = found["share_top_beats_random"], found["seconds_per_explanation"]
        print(f"| {name} | {found['parts']} ({found['hidden']}) | {top:.3f} | {rand:.3f} | "
              f"{share:.0%} | {took} |")  # fmt: skip


if __name__ == "__main__":
    main()

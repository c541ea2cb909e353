"""ONNX Runtime (fp32, int8) vs PyTorch (fp32, bf16) for an audio classifier, on real
recordings: scratch-audio trained by the plain command on the Free Spoken Digit Dataset.

Every engine reads the test clips (300 WAV files at 8 kHz) through the same decoding,
resampling and Whisper feature extraction (``task.forward``, shortest clips first, batches of
64); ONNX runs behind the same interface as the PyTorch model. Engines alternate over
``--repeats`` rounds after one warm-up batch each; agreement is the share of clips whose label
equals PyTorch fp32's, accuracy is against the clips' class folders. Every engine gets
``--threads`` CPU threads (default 1, as ``onnx_speed.py``).

Usage::

    python benchmarks/data/unseen/prepare_fsdd.py --git-dir REPO   # once
    python benchmarks/audio_onnx_speed.py [--run runs/bench-fsdd] [--repeats 3]

Writes ``benchmarks/results/audio_onnx_speed.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from onnx_speed import share_equal, timed
from results_file import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FSDD = HERE / "data" / "unseen" / "fsdd"


def ensure_run(run: Path) -> None:
    """Train scratch-audio on FSDD with the plain command if ``run`` has no model yet."""
    if (run / "model" / "config.json").is_file():
        return
    if not (FSDD / "train").is_dir():
        raise SystemExit(f"{FSDD}: not built; run benchmarks/data/unseen/prepare_fsdd.py")
    command = [sys.executable, "-m", "tunelab.cli", "train", "--data", str(FSDD), "--out",
               str(run), "--overwrite"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "bench-fsdd")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every engine")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    from tunelab.api import load_trained, text_frame
    from tunelab.serving.export import export_onnx
    from tunelab.serving.onnx_model import load_onnx

    ensure_run(args.run)
    export = export_onnx(args.run, quantize="int8")
    clips = sorted((FSDD / "test").rglob("*.wav"))
    gold = [clip.parent.name for clip in clips]
    model, extractor, task, max_length = load_trained(args.run)
    frame = text_frame(task, [str(clip) for clip in clips])
    engines = {
        "PyTorch fp32": (model, "fp32"),
        "PyTorch bf16 (autocast)": (model, "bf16"),
        "ONNX Runtime fp32": (load_onnx(args.run, "fp32", args.threads)[0], "fp32"),
        "ONNX Runtime int8": (load_onnx(args.run, "int8", args.threads)[0], "fp32"),
    }
    for engine, precision in engines.values():  # warm-up
        task.forward(engine, extractor, frame.iloc[:64], max_length, 64, precision)
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    labels: dict[str, list[str]] = {}
    for round_ in range(args.repeats):
        order = list(engines) if round_ % 2 == 0 else list(reversed(engines))
        for name in order:
            engine, precision = engines[name]
            logits, took = timed(task.forward, engine, extractor, frame, max_length, 64, precision)
            seconds[name].append(took)
            labels[name] = [task.labels[i] for i in np.asarray(logits).argmax(axis=-1)]
    reference = labels["PyTorch fp32"]
    rows = [
        {
            "engine": name,
            "clips": len(clips),
            "seconds": [round(s, 3) for s in seconds[name]],
            "clips_per_second": round(len(clips) / statistics.median(seconds[name]), 1),
            "agreement_with_pytorch_fp32": share_equal(labels[name], reference),
            "accuracy": share_equal(labels[name], gold),
        }
        for name in engines
    ]
    write_results(HERE / "results" / "audio_onnx_speed.json", {
        "run": str(args.run), "test_clips": len(clips), "threads": args.threads,
        "repeats": args.repeats, "export_parity": export["parity"],
        "export_sizes_mb": export["sizes_mb"], "engines": rows,
    })  # fmt: skip
    print(f"{len(clips)} FSDD test clips, {args.threads} thread(s), median of {args.repeats}")
    print("| engine | clips/s | agreement with PyTorch fp32 | accuracy |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['engine']} | {row['clips_per_second']} | "
              f"{row['agreement_with_pytorch_fp32']:.2%} | {row['accuracy']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()

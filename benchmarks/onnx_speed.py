"""ONNX Runtime (fp32, int8) vs PyTorch (fp32, bf16) inference on the review test set, and
``tunelab predict`` vs ``transformers.pipeline`` on the same model and texts, in one run.

Every engine reads the same texts through the same pre- and post-processing
(``task.forward`` on length-sorted batches of 64); ONNX runs behind the same interface as
the PyTorch model. Agreement is the share of texts whose predicted label equals PyTorch
fp32's; accuracy is against the gold labels. Every engine gets ``--threads`` CPU threads
(default 1: on a small machine shared with other jobs, extra threads mostly wait).

Usage::

    python benchmarks/onnx_speed.py [--run runs/bench-serve]

Writes ``benchmarks/results/onnx_speed.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TEST = ROOT / "data" / "zh-sentiment" / "test.csv"


def ensure_run(run: Path) -> None:
    """Train the starter sentiment run (examples/zh-sentiment.yaml) if ``run`` has no model."""
    if (run / "model" / "config.json").is_file():
        return
    command = [sys.executable, "-m", "tunelab.cli", "train", str(ROOT / "examples" /
               "zh-sentiment.yaml"), "--output", str(run), "--overwrite"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)


def ensure_export(run: Path) -> dict:
    """The int8 ONNX export of ``run`` (made now if missing) and its parity check."""
    from tunelab.serving.export import export_onnx

    info = run / "model" / "onnx" / "export.json"
    if info.is_file() and "int8" in json.loads(info.read_text())["files"]:
        return json.loads(info.read_text())
    return export_onnx(run, quantize="int8")


def timed(function, *args, **kwargs) -> tuple[object, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def share_equal(first: list[str], second: list[str]) -> float:
    """The share of positions where two equally long label lists agree."""
    return float(np.mean(np.asarray(first) == np.asarray(second)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "bench-serve")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "onnx_speed.json")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every engine")
    args = parser.parse_args()

    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)

    import tunelab
    from tunelab.api import load_trained, text_frame
    from tunelab.serving.onnx_model import load_onnx

    ensure_run(args.run)
    export = ensure_export(args.run)
    test = pd.read_csv(TEST)
    texts, gold = test["text"].astype(str).tolist(), test["label"].astype(str).tolist()
    model, tokenizer, task, max_length = load_trained(args.run)
    frame = text_frame(task, texts)

    engines = {
        "PyTorch fp32": (model, "fp32"),
        "PyTorch bf16 (autocast)": (model, "bf16"),
        "ONNX Runtime fp32": (load_onnx(args.run, "fp32", args.threads)[0], "fp32"),
        "ONNX Runtime int8": (load_onnx(args.run, "int8", args.threads)[0], "fp32"),
    }
    rows, reference = [], None
    for name, (engine, precision) in engines.items():
        task.forward(engine, tokenizer, frame.iloc[:64], max_length, 64, precision)  # warm-up
        logits, seconds = timed(task.forward, engine, tokenizer, frame, max_length, 64, precision)
        labels = [task.labels[i] for i in np.asarray(logits).argmax(axis=-1)]
        if reference is None:
            reference = (logits, labels)
        rows.append({
            "engine": name,
            "texts": len(texts),
            "seconds": round(seconds, 2),
            "texts_per_second": round(len(texts) / seconds, 1),
            "agreement_with_pytorch_fp32": share_equal(labels, reference[1]),
            "max_abs_logit_diff": float(np.abs(np.asarray(logits) - reference[0]).max()),
            "accuracy": share_equal(labels, gold),
        })  # fmt: skip

    # tunelab predict vs transformers.pipeline, each timed from loading the folder
    from transformers import pipeline

    ours, ours_seconds = timed(tunelab.predict, args.run, texts=texts)
    model_dir = str(args.run / "model")
    predictors = {}
    for batch_size in (64, 1):

        def run_pipeline(batch_size: int = batch_size) -> list:
            classify = pipeline("text-classification", model=model_dir, device="cpu")
            return classify(texts, batch_size=batch_size, truncation=True, max_length=max_length)

        predictors[batch_size] = timed(run_pipeline)
    ours_labels = [r["label"] for r in ours]
    predict_rows = [
        {"predictor": "tunelab predict (batch 64, length-sorted)", "seconds": ours_seconds,
         "agreement_with_tunelab": 1.0},
        *[{"predictor": f"transformers.pipeline (batch_size={size})", "seconds": seconds,
           "agreement_with_tunelab": share_equal([r["label"] for r in result], ours_labels)}
          for size, (result, seconds) in predictors.items()],
    ]  # fmt: skip
    for row in predict_rows:
        row["seconds"] = round(row["seconds"], 2)
        row["texts_per_second"] = round(len(texts) / row["seconds"], 1)

    result = {
        "run": str(args.run),
        "test_texts": len(texts),
        "max_length": max_length,
        "torch_threads": torch.get_num_threads(),
        "export_parity": export["parity"],
        "export_sizes_mb": export["sizes_mb"],
        "engines": rows,
        "predict_vs_pipeline": predict_rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{len(texts)} test reviews, max_length {max_length}, {torch.get_num_threads()} threads")
    print("| engine | texts/s | agreement with PyTorch fp32 | max abs logit diff | accuracy |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['texts_per_second']} | {r['agreement_with_pytorch_fp32']:.2%}"
              f" | {r['max_abs_logit_diff']:.1e} | {r['accuracy']:.4f} |")  # fmt: skip
    print()
    print("| predictor (load + predict) | seconds | texts/s | label agreement with tunelab |")
    print("|---|---|---|---|")
    for r in predict_rows:
        print(f"| {r['predictor']} | {r['seconds']} | {r['texts_per_second']} | "
              f"{r['agreement_with_tunelab']:.2%} |")  # fmt: skip


if __name__ == "__main__":
    main()

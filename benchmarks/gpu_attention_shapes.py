"""What a new batch shape costs a training step on a GPU, with and without cuDNN attention.

The H200 run (README, "On a GPU") found tunelab's first 19 training steps taking 14.7 of its
24.5 s loop and its attention calls twice the careful script's host time; its length-bucketed
batches have 44 distinct shapes over two epochs, random batches 29. The suspect: kernel
selection (cuDNN's attention builds an execution plan per shape) paid once per new shape.
This measures it directly: MiniLM forward and backward in bf16 autocast over ``--shapes``
batch shapes (32 rows, lengths 12 to 12 + 2 x shapes, a quarter of each row padded), each
shape's first step timed, then the same shapes again, in a fresh process per attention
setting:

- ``default``: PyTorch's own choice of SDPA backend;
- ``no-cudnn``: ``torch.backends.cuda.enable_cudnn_sdp(False)`` (flash or memory-efficient).

If the first pass costs far more than the second under ``default`` and not under
``no-cudnn``, new shapes are the cost and the fix is either fewer shapes
(``training.pad_to_multiple_of``) or the other backend.

Usage::

    python benchmarks/gpu_attention_shapes.py --model /tmp/minilm [--shapes 44] [--out F]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from arms import run_child

SETTINGS = ("default", "no-cudnn")


def child(model_dir: str, setting: str, shapes: int) -> dict:
    """One setting in this process: seconds for the first and second pass over the shapes."""
    import torch
    from transformers import AutoModelForSequenceClassification

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "no-cudnn" and device == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2).to(device)
    model.train()
    lengths = [12 + 2 * i for i in range(shapes)]

    def step(length: int) -> float:
        ids = torch.randint(1000, 20000, (32, length), device=device)
        mask = torch.ones_like(ids)
        mask[::2, -(length // 4) :] = 0  # half the rows padded by a quarter
        labels = torch.randint(0, 2, (32,), device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - began

    step(lengths[0] + 1)  # a shape outside the list: CUDA context and first kernels
    first = [step(length) for length in lengths]
    second = [step(length) for length in lengths]
    return {
        "setting": setting,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "shapes": shapes,
        "first_pass_s": round(sum(first), 3),
        "second_pass_s": round(sum(second), 3),
        "first_pass_slowest_step_s": round(max(first), 3),
        "second_pass_median_step_s": round(sorted(second)[len(second) // 2], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model folder (MiniLM)")
    parser.add_argument("--shapes", type=int, default=44)
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.model, args.child, args.shapes)), flush=True)
        return
    results = []
    for setting in SETTINGS:
        results.append(run_child(__file__, setting, "--model", args.model, "--shapes",
                                 str(args.shapes)))  # fmt: skip
        print(json.dumps(results[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""Batched, length-sorted forward passes over tokenized inputs."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np


def resolve_precision(requested: str) -> str:
    """Pick ``bf16``, ``fp16`` or ``fp32`` for this machine.

    ``auto`` means bf16 where the GPU or the CPU has bf16 matrix units (Intel AMX/AVX512-BF16:
    several times the fp32 matmul speed), fp16 on older GPUs, else fp32.
    """
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def autocast(model: Any, precision: str) -> Any:
    """A context that runs ``model``'s forward pass in ``precision`` (no-op for fp32)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=model.device.type, dtype=dtype)


def forward_in_batches(
    model: Any,
    tokenizer: Any,
    features: dict[str, list],
    batch_size: int = 64,
    precision: str = "fp32",
    ragged: bool = False,
) -> Any:
    """Run ``model`` over pre-tokenized rows and return its logits in the original row order.

    Rows are sorted by length so each batch pads to a similar length; dynamic padding
    then wastes little compute.

    Args:
        ragged: per-token logits: return a list of ``(row length, labels)`` arrays with the
            padding removed, instead of one stacked array.
    """
    import torch

    ids = features["input_ids"]
    order = np.argsort([len(row) for row in ids], kind="stable")[::-1]
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in features]
    outputs: list[np.ndarray | None] = [None] * len(ids)
    model.eval()
    with torch.inference_mode(), autocast(model, precision):
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer.pad(
                [{name: features[name][i] for name in names} for i in chunk], return_tensors="pt"
            )
            batch = {key: value.to(model.device) for key, value in batch.items()}
            logits = model(**batch).logits.float().cpu().numpy()
            for row, index in enumerate(chunk):
                outputs[index] = logits[row]
                if ragged:
                    keep = batch["attention_mask"][row].cpu().numpy().astype(bool)
                    outputs[index] = logits[row][keep]
    if ragged:
        return outputs
    return np.stack(outputs) if outputs else np.zeros((0, model.config.num_labels), np.float32)

"""Weights that train are kept in fp32, whatever dtype the checkpoint stores.

transformers 5 loads a checkpoint in the dtype it was saved in, and most recent ones are
saved in bfloat16 (Qwen, Llama, SmolLM2, ...). Trained as loaded, AdamW's updates land on
bf16 weights, whose 8-bit mantissa rounds away every update smaller than about 1/256 of the
weight: at fine-tuning rates most of them. Mixed precision keeps fp32 master weights and
computes in bf16 under autocast; so does tunelab. Full fine-tuning, and any run without
autocast, casts the whole model to fp32 (one dtype throughout, as an fp32 checkpoint would
be); adapter runs under autocast cast only what trains (the new head PEFT keeps trainable;
LoRA's own weights are fp32 already), so the frozen base stays small. A quantised base is
never cast.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("tunelab")


def _quantized(model: Any) -> bool:
    return bool(
        getattr(model, "hf_quantizer", None)
        or getattr(model, "is_loaded_in_4bit", False)
        or getattr(model, "is_loaded_in_8bit", False)
    )


def fp32_master_weights(model: Any, precision: str, adapters: bool) -> int:
    """Cast ``model``'s half-precision weights that train (or, for full fine-tuning or an
    fp32 run, all of them) to fp32, in place.

    Args:
        model: the model as loaded, adapters added.
        precision: the run's ``bf16``, ``fp16`` or ``fp32``.
        adapters: whether a PEFT method trains adapters on a frozen base.

    Returns:
        How many weights were cast (0 where none was stored in half precision).
    """
    import torch

    half = (torch.bfloat16, torch.float16)
    trainable = [p for p in model.parameters() if p.requires_grad and p.dtype in half]
    if not trainable:
        return 0
    stored = str(trainable[0].dtype).removeprefix("torch.")
    if _quantized(model) or (adapters and precision != "fp32"):
        for parameter in trainable:
            parameter.data = parameter.data.float()
        cast = sum(p.numel() for p in trainable)
    else:
        cast = sum(p.numel() for p in model.parameters() if p.dtype in half)
        model.float()
    log.info(
        "the checkpoint stores its weights in %s: %s of them are cast to fp32 to train "
        "(half-precision weights would round away AdamW's small updates; the computing "
        "precision stays %s)",
        stored, f"{cast / 1e6:.1f}M" if cast >= 100_000 else f"{cast:,}", precision,
    )  # fmt: skip
    return cast

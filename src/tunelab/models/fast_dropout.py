"""Dropout on the CPU with masks from a faster random generator.

PyTorch's CPU dropout draws each mask element with ``bernoulli_`` from its Mersenne Twister,
about 7 ns an element on a 2-core CPU: 11% of a MiniLM training step on 32 x 40 tokens, and
18% on 16 x 300, where the attention probabilities' dropout covers batch x heads x length x
length elements. The masks here keep the same probability (to 1/65,536) and the same
scaling but take their bits from numpy's SFC64, 16 bits an element, seeded from torch's own
generator at every call: ``seed`` repeats a run exactly and ``--resume`` (which restores
torch's generator state) continues it. The masks differ from torch's, so a run's numbers
move the way another seed moves them, not its arithmetic. Attention dropout sits inside
SDPA, which on the CPU leaves its fused kernel for a math path once dropout is on; for the
models given these masks, training attention on the CPU is written out here instead (an
additive padding mask, the 1/keep scaling after the product with the values), 1.6x faster
a step on 16 x 300 tokens with the masks. Without dropout, in bf16, training attention is
written out too: the fused CPU kernel's backward is slow in bf16 (forward and backward
1.5-9x slower than the written-out product on MiniLM's and SmolLM2's shapes, while in fp32
and in inference it is the faster one; ``benchmarks/cpu_attention.py``), up to
:data:`WRITTEN_OUT_MOST` score elements a call, past which its memory (the scores, kept for
the backward, where the fused kernel keeps none) is worth more. GPUs, ``torch.compile`` and
evaluation take PyTorch's own path.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.nn import functional

MASK_BITS = 16
_MASK_VALUES = 1 << MASK_BITS
_FLAG = "_tunelab_fast_dropout"  # set on every module of a model this was applied to
# the most batch x heads x queries x keys a training call without dropout writes out: 32 MB
# of bf16 scores a layer (a 2,048-token row of a 9-head model is 38M and takes the fused kernel)
WRITTEN_OUT_MOST = 1 << 24


def keep_probability(p: float) -> float:
    """The share of elements a mask for dropout ``p`` keeps (``p`` rounded to 1/65,536)."""
    return 1.0 - round(p * _MASK_VALUES) / _MASK_VALUES


def _kept(shape: torch.Size | tuple[int, ...], p: float) -> np.ndarray:
    """The draws of :func:`keep_mask`, as a flat numpy boolean array."""
    count = math.prod(shape)
    seed = int(torch.empty((), dtype=torch.int64).random_())
    words = np.random.SFC64(seed).random_raw((count + 3) // 4)  # four 16-bit draws a word
    # int16 runs from -32768; an element is dropped when its draw is among the lowest p share
    return np.asarray(words.view(np.int16)[:count] >= round(p * _MASK_VALUES) - _MASK_VALUES // 2)


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """A boolean mask of ``shape``, each element True with :func:`keep_probability` ``(p)``.

    The generator's seed is drawn from torch's default generator, so ``torch.manual_seed``
    fixes the mask.
    """
    return torch.from_numpy(_kept(shape, p)).view(shape)


# the bits of 1.0 in each float type, written by numpy straight from the boolean draws
_ONE_BITS = {torch.bfloat16: (np.uint16, 0x3F80), torch.float16: (np.uint16, 0x3C00),
             torch.float32: (np.uint32, 0x3F80_0000)}  # fmt: skip


def keep_multiplier(
    shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype
) -> torch.Tensor:
    """:func:`keep_mask` (the same draws) as 1.0 and 0.0 in ``dtype``, to multiply by.

    Multiplying is the faster way to drop on the CPU: on 32 x 12 x 305 x 305 bf16 attention
    probabilities, ``x * multiplier`` took 11 ms where ``torch.where(mask, x, 0)`` took 52 ms,
    forward and backward alike; numpy writes the multiplier in 18 ms.
    """
    kept = _kept(shape, p)
    if dtype not in _ONE_BITS:
        return torch.from_numpy(kept).view(shape).to(dtype)
    word, one = _ONE_BITS[dtype]
    return torch.from_numpy(np.multiply(kept, word(one), dtype=word)).view(dtype).view(shape)


class _ScaleKept(torch.autograd.Function):
    """``x`` times ``kept`` (1 or 0) times ``scale``, and the same for the gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kept: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(kept)
        ctx.scale = scale
        return (x * kept).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (kept,) = ctx.saved_tensors
        return (grad * kept).mul_(ctx.scale), None, None


def _cpu_eager(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


def _on_fast_path(x: torch.Tensor, p: float) -> bool:
    return 0.0 < p < 1.0 and _cpu_eager(x)


def _attention_dtype(query: torch.Tensor) -> torch.dtype:
    """The dtype SDPA runs in: autocast's where it is on (rotary embeddings hand it fp32)."""
    if query.dtype == torch.float32 and torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu")
    return query.dtype


def _written_out_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           p: float) -> bool:  # fmt: skip
    """Whether this attention call is faster written out than through SDPA on the CPU."""
    if not _cpu_eager(query):
        return False
    if 0.0 < p < 1.0:
        return True  # SDPA leaves its fused kernel once dropout is on anyway
    return (
        p == 0.0
        and _attention_dtype(query) == torch.bfloat16
        and torch.is_grad_enabled()
        and any(states.requires_grad for states in (query, key, value))  # a backward follows
        and math.prod(query.shape[:3]) * key.shape[2] <= WRITTEN_OUT_MOST
    )


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``torch.nn.functional.dropout`` with the faster masks where they apply."""
    if not training or not _on_fast_path(x, p):
        return functional.dropout(x, p, training)
    kept = keep_multiplier(x.shape, p, x.dtype)
    return _ScaleKept.apply(x, kept, 1.0 / keep_probability(p))


def _dropout_module_forward(self: torch.nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    return dropout(x, self.p, self.training)


def _attention(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap transformers' SDPA attention: flagged modules on the CPU get the faster masks."""

    def attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                  value: torch.Tensor, attention_mask: torch.Tensor | None,
                  dropout: float = 0.0, scaling: float | None = None,
                  is_causal: bool | None = None, **kwargs: Any) -> tuple[Any, None]:  # fmt: skip
        # transformers' rule: causal only without a mask, for more than one query position
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        causal = bool(causal and attention_mask is None and query.shape[2] > 1)
        plain = (
            not getattr(module, _FLAG, False)
            or not _written_out_attention(query, key, value, dropout)
            or query.shape[1] % key.shape[1]
            or any(kwargs.get(name) is not None for name in ("position_bias", "softcap"))
            or kwargs.get("output_attentions")
            or (causal and key.shape[2] != query.shape[2])  # transformers crops the keys then
        )
        if plain:
            return original(module, query, key, value, attention_mask, dropout=dropout,
                            scaling=scaling, is_causal=is_causal, **kwargs)  # fmt: skip
        return _math_attention(query, key, value, attention_mask, dropout, scaling, causal)

    attention.__wrapped__ = original  # type: ignore[attr-defined]
    return attention


def _math_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, p: float, scaling: float | None,
                    causal: bool) -> tuple[torch.Tensor, None]:  # fmt: skip
    """SDPA's arithmetic, written out, with the attention probabilities' dropout from here.

    With fewer key and value heads than query heads (grouped-query attention), each key and
    value head serves its run of query heads by broadcasting, not by copies.
    """
    batch, heads, length, size = query.shape
    scale = scaling if scaling is not None else size**-0.5
    groups = heads // key.shape[1]
    if groups > 1:  # (batch, key heads, groups, length, size) against (batch, key heads, 1, ...)
        query = query.unflatten(1, (key.shape[1], groups))
        key, value = key.unsqueeze(2), value.unsqueeze(2)
        if attention_mask is not None and attention_mask.dim() == 4:
            attention_mask = attention_mask.unsqueeze(2)
    scores = torch.matmul(query * scale, key.transpose(-2, -1))  # scaled before: fewer elements
    if causal:
        attention_mask = torch.ones(length, scores.shape[-1], dtype=torch.bool,
                                    device=query.device).tril()  # fmt: skip
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # additive, so the gradient passes unmasked
            additive = torch.zeros(attention_mask.shape, dtype=scores.dtype, device=scores.device)
            lowest = torch.finfo(scores.dtype).min
            attention_mask = additive.masked_fill_(~attention_mask, lowest)
        scores = scores.add_(attention_mask)
    # in the scores' own dtype: torch's CPU kernel works in fp32 inside for bf16 anyway, while
    # an fp32 result and its conversion back made forward and backward 5x slower (16 x 250)
    probabilities = torch.softmax(scores, dim=-1)
    if p == 0.0:
        output = torch.matmul(probabilities, value)
    else:  # dropped probabilities are zeroed here and the 1 / keep scaling waits for the
        # product, which is length / head width times smaller than the probabilities
        kept = probabilities * keep_multiplier(probabilities.shape, p, probabilities.dtype)
        output = torch.matmul(kept, value) * (1.0 / keep_probability(p))
    output = output.reshape(batch, heads, length, value.shape[-1])
    return output.transpose(1, 2).contiguous(), None


def _install_attention() -> None:
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    current = ALL_ATTENTION_FUNCTIONS["sdpa"]
    if not hasattr(current, "__wrapped__"):
        AttentionInterface.register("sdpa", _attention(current))


def fast_cpu_dropout(model: torch.nn.Module) -> int:
    """Give every ``nn.Dropout`` of ``model`` and its SDPA attention the faster CPU masks.

    In place and idempotent; the weights and the state dict do not change, and the bound
    forwards survive ``copy.deepcopy``. Other models in the process keep PyTorch's dropout.

    Returns:
        How many dropout modules now use the faster masks.
    """
    _install_attention()
    replaced = 0
    for module in model.modules():
        setattr(module, _FLAG, True)
        if isinstance(module, torch.nn.Dropout):
            module.forward = types.MethodType(_dropout_module_forward, module)
            replaced += 1
    return replaced

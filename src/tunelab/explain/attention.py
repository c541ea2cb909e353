"""Attention maps: the softmax(QKᵀ/√d) weights of one layer and head, as the model computes them.

Fused attention kernels (sdpa, flash) never materialise the weights, so the model is switched
to the eager implementation while it is explained and switched back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tunelab.errors import UserError


def _pretrained(model: Any) -> Any:
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


@contextmanager
def eager_attention(model: Any) -> Iterator[bool]:
    """Run the block with eager attention; yields whether the model could switch to it."""
    inner = _pretrained(model)
    before = getattr(inner.config, "_attn_implementation", None)
    switch = getattr(inner, "set_attn_implementation", None)
    if before in (None, "eager") or not callable(switch):
        yield before == "eager" or before is None
        return
    try:
        switch("eager")
    except (ValueError, ImportError):  # a model class that cannot run eagerly
        yield False
        return
    try:
        yield inner.config._attn_implementation == "eager"
    finally:
        switch(before)


def check_layer_head(
    layer: int, head: int | None, layers: int, heads: int
) -> tuple[int, int | None]:
    """``layer`` (negative counts from the end) and ``head`` as indices, or a clear error."""
    if not -layers <= layer < layers:
        raise UserError(
            f"--layer {layer} is out of range: this model has {layers} layers, so give "
            f"0 to {layers - 1} (or -1 to -{layers} counting from the last)"
        )
    if head is not None and not 0 <= head < heads:
        raise UserError(
            f"--head {head} is out of range: this model has {heads} attention heads per layer, "
            f"so give 0 to {heads - 1} (or leave it out for the mean of all heads)"
        )
    return layer % layers, head


def attention_map(
    attentions: tuple[Any, ...] | None, layer: int, head: int | None, tokens: int
) -> dict[str, Any] | None:
    """The ``tokens x tokens`` attention matrix of one layer and head (or the heads' mean).

    Args:
        attentions: the model's ``output_attentions`` (one ``(1, heads, n, n)`` per layer).
        layer: layer index (negative counts from the end).
        head: head index, or ``None`` for the mean over heads.
        tokens: number of real tokens; virtual tokens that prompt tuning puts before them
            are cut off (their rows and columns are not the text's).

    Returns:
        ``{layer, head, heads, layers, matrix}`` with rows that sum to 1 (each query's
        weights over the keys), or ``None`` when the model returned no weights.
    """
    if not attentions or any(a is None for a in attentions):
        return None
    layers, heads = len(attentions), int(attentions[0].shape[1])
    layer, head = check_layer_head(layer, head, layers, heads)
    weights = attentions[layer][0].float()
    matrix = weights.mean(dim=0) if head is None else weights[head]
    skip = matrix.shape[-1] - tokens
    matrix = matrix[skip:, skip:] if skip > 0 else matrix
    if skip > 0:  # rows keep summing to 1 over the text's own tokens
        matrix = matrix / matrix.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return {
        "layer": layer,
        "head": head,
        "layers": layers,
        "heads": heads,
        "matrix": [[round(float(v), 5) for v in row] for row in matrix],
    }

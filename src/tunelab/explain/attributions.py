"""Token attributions by integrated gradients on the input embeddings (Captum).

The embedding layer is found generically (``get_input_embeddings()``), so any model family
and PEFT-wrapped models work alike. The baseline is the same sequence with every ordinary
token replaced by the padding (or mask) token, special tokens kept: attributions then say how
much each token, rather than the sequence frame around it, moved the score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunelab.errors import UserError

# Attribution batches hold steps x sequence length token positions at most about this many.
POSITIONS_PER_BATCH = 8192


def require_captum() -> Any:
    """The ``captum.attr`` module, or a clear error naming the extra that installs it."""
    try:
        import captum.attr
    except ImportError as exc:
        raise UserError(
            "explanations need Captum, which is not installed; run: pip install 'tunelab[explain]'"
        ) from exc
    return captum.attr


def baseline_token(tokenizer: Any) -> tuple[int, str]:
    """The id (and text) of the token that stands for 'nothing' in the baseline."""
    for name in ("pad_token", "mask_token", "unk_token", "eos_token"):
        token = getattr(tokenizer, name, None)
        if token is not None:
            return int(tokenizer.convert_tokens_to_ids(token)), str(token)
    return 0, tokenizer.convert_ids_to_tokens(0)


def baseline_ids(input_ids: Any, special: Any, token_id: int) -> Any:
    """``input_ids`` with every non-special token replaced by ``token_id``."""
    import torch

    return torch.where(special.bool(), input_ids, torch.full_like(input_ids, token_id))


def integrated_gradients(
    model: Any,
    inputs: dict[str, Any],
    baseline: Any,
    score: Callable[[Any], Any],
    steps: int,
) -> tuple[list[float], float]:
    """Attribution of ``score(logits)`` to each input token, and the convergence delta.

    Args:
        model: the classifier (eval mode); its forward takes ``input_ids`` and masks.
        inputs: one encoded text (batch of 1): ``input_ids`` plus masks.
        baseline: baseline token ids, same shape as ``input_ids``.
        score: maps a batch of logits to one number per row (the explained output).
        steps: integration steps (more: smaller delta, slower).

    Returns:
        One attribution per token (summed over the embedding dimensions) and the delta:
        sum of attributions minus (score at input - score at baseline); near 0 when the
        integral is well approximated.
    """
    attr = require_captum()
    names = [name for name in inputs if name != "input_ids"]

    def forward(input_ids: Any, *extra: Any) -> Any:
        return score(model(input_ids=input_ids, **dict(zip(names, extra, strict=True))).logits)

    length = int(inputs["input_ids"].shape[-1])
    layer = attr.LayerIntegratedGradients(forward, model.get_input_embeddings())
    attributions, delta = layer.attribute(
        inputs=inputs["input_ids"],
        baselines=baseline,
        additional_forward_args=tuple(inputs[name] for name in names),
        n_steps=steps,
        internal_batch_size=max(1, min(steps, POSITIONS_PER_BATCH // max(length, 1))),
        return_convergence_delta=True,
    )
    per_token = attributions.sum(dim=-1)[0].detach().float()
    return [round(float(v), 6) for v in per_token], round(float(delta.reshape(-1)[0]), 6)

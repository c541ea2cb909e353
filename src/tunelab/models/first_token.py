"""Run a first-token classifier's last layer on the first token only.

BERT-family sequence classifiers (BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA) classify from
position 0 of the last layer's output. That layer's attention still needs every position as
keys and values, but its output projection and feed-forward block run on every other
position for nothing: an eighth of the layers' matrix work in a 6-layer encoder. Restricting
those two to the first position leaves the logits and every gradient as they were (float
rounding aside); a MiniLM training step on 32 x 40 tokens took 770-822 ms instead of 911.
Under SDPA (unless attention weights are asked for) the layer's attention takes the first
position's query alone too: a row's scores are ``1 x length`` there instead of
``length x length``, a sixth of a 6-layer encoder's attention work.
"""

from __future__ import annotations

import types
from typing import Any

from tunelab.models.adapters import base_model

# the attention implementation of packed batches (registered by tunelab.models.unpadded)
UNPADDED = "tunelab_unpadded"

# the classes whose head reads hidden_states[:, 0] of the last layer (pooler or <s> token)
FIRST_TOKEN_CLASSIFIERS = frozenset(
    {
        "BertForSequenceClassification",
        "RobertaForSequenceClassification",
        "XLMRobertaForSequenceClassification",
        "CamembertForSequenceClassification",
        "ElectraForSequenceClassification",
    }
)


def _first_position_attention(
    self: Any, hidden_states: Any, attention_mask: Any = None, **kwargs: Any
) -> tuple[Any, Any]:
    """The last layer's attention block with its output projection on each row's first
    token: ``(rows, 1, hidden)``, so the feed-forward block after it sees one token a row.

    A padded batch's rows start at position 0; a packed one (``packed_rows``, see
    :mod:`tunelab.models.unpadded`) is one row whose rows start at its layout's ``starts``.
    """
    layout = kwargs.get("packed_rows")
    if layout is None:
        first = hidden_states[:, :1]
    else:
        first = hidden_states[0, layout["starts"]].unsqueeze(1)
    if _first_query_applies(self.self, layout, kwargs):
        context = _first_query_attention(self.self, first, hidden_states, attention_mask, layout)
        return self.output(context, first), None
    context, weights = self.self(hidden_states, attention_mask=attention_mask, **kwargs)
    context = context[:, :1] if layout is None else context[0, layout["starts"]].unsqueeze(1)
    return self.output(context, first), weights


def _first_query_applies(attention: Any, layout: Any, kwargs: dict[str, Any]) -> bool:
    """Whether the first-query attention below computes what ``attention`` would: SDPA (the
    weights of every query are not asked for), no cache, and BERT's projections."""
    return (
        getattr(getattr(attention, "config", None), "_attn_implementation", None)
        in ("sdpa", UNPADDED)
        and not kwargs.get("output_attentions")
        and kwargs.get("cache") is None
        and kwargs.get("past_key_values") is None
        and (layout is None or "rows" in layout)
        and all(hasattr(attention, name) for name in _SELF_ATTENTION_PARTS)
    )


_SELF_ATTENTION_PARTS = ("query", "key", "value", "dropout", "scaling",
                         "num_attention_heads", "attention_head_size")  # fmt: skip


def _first_query_attention(
    attention: Any, first: Any, hidden_states: Any, attention_mask: Any, layout: Any
) -> Any:
    """BERT self-attention for each row's first token alone: ``(rows, 1, hidden)``."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    rows = first.shape[0]
    heads, size = attention.num_attention_heads, attention.attention_head_size
    query = attention.query(first).view(rows, 1, heads, size).transpose(1, 2)
    key, value = attention.key(hidden_states), attention.value(hidden_states)
    if layout is None:  # a padded batch's mask: the first query's row of it
        mask = attention_mask
        if mask is not None and mask.dim() == 4 and mask.shape[-2] > 1:
            mask = mask[..., :1, :]
    else:  # a packed batch: every row padded into one block (one query a row is cheap)
        block = layout["rows"]
        key, value = (states[0].index_select(0, block["gather"]) for states in (key, value))
        mask = block["mask"]
    key, value = (states.view(rows, -1, heads, size).transpose(1, 2) for states in (key, value))
    # whatever serves "sdpa" now: tunelab's CPU dropout masks wrap it (models.fast_dropout)
    context, _ = ALL_ATTENTION_FUNCTIONS["sdpa"](
        attention, query, key, value, mask, is_causal=False, scaling=attention.scaling,
        dropout=attention.dropout.p if attention.training else 0.0,
    )  # fmt: skip
    return context.reshape(rows, 1, heads * size)


def first_token_last_layer(model: Any) -> bool:
    """Make ``model``'s last layer compute its output for the first token only, in place.

    Applies to the classes in :data:`FIRST_TOKEN_CLASSIFIERS` (also under a PEFT wrapper);
    the weights, the state dict and the logits do not change, but the encoder's last hidden
    state then holds position 0 alone. Idempotent; survives ``copy.deepcopy``.

    Returns:
        Whether the model was one this applies to.
    """
    base = base_model(model)
    if type(base).__name__ not in FIRST_TOKEN_CLASSIFIERS:
        return False
    encoder = getattr(getattr(base, base.base_model_prefix, None), "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not layers or getattr(layers[-1], "add_cross_attention", False):
        return False
    attention = getattr(layers[-1], "attention", None)
    if getattr(attention, "output", None) is None:
        return False
    # a bound method (not a closure): deepcopy rebinds it to the copied module
    attention.forward = types.MethodType(_first_position_attention, attention)
    return True

"""Padding-free training batches for BERT-family classifiers: a batch's rows laid end to end.

A padded batch of ``B`` rows runs every projection and feed-forward block on ``B x longest``
positions, real or not. Here the rows are concatenated into one ``(1, tokens)`` row, so
those products (nearly all of a short-text encoder's work) run on real tokens only; each
row keeps its own position ids, and attention, which must keep rows apart, gathers each
row's queries, keys and values into padded blocks, one masked SDPA call a block, and
scatters the result back. Rows go into up to :data:`ATTENTION_GROUPS` blocks by length, so
a short row is not padded to the batch's longest: attention's work grows with a block's
rows x longest², and on 500 zh reviews one block a batch did 1.8 times the work of no
padding at all, two blocks 1.2 times. The classifier then reads each row's first token (see
:mod:`tunelab.models.first_token`). Logits and gradients match the padded batch's, float
rounding aside.

Why it matters: tunelab's batches mix labels (:mod:`tunelab.training.sampling`), which costs
padding on long texts: on 500 zh reviews MiniLM's training loop ran at 38.1 samples/s
packed against 33.9 padded, with 0.4 GB less memory (README, "Padding-free batches").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunelab.models.adapters import base_model
from tunelab.models.first_token import UNPADDED, first_token_last_layer

LAYOUT = "packed_rows"  # the keyword that carries a batch's layout down to the attention
# pack a batch when padding it would add this share of positions or more: below, gathering
# rows for attention costs about what the padding does (MiniLM steps with 5-9% padding ran
# 0.96-1.09x as fast packed, with 15-57% 1.03-1.67x; benchmarks/unpadded_steps.py)
PACK_FROM = 1.10
ATTENTION_GROUPS = 4  # the most blocks a packed batch's attention is split into
# what one more block costs (a few more kernel calls in each layer, forward and backward),
# in attention work units (rows x longest²): a split must save more than this
GROUP_COST = 20_000


def unpadded_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
    scaling: float | None = None, dropout: float = 0.0, **kwargs: Any,
) -> tuple[Any, None]:  # fmt: skip
    """Attention over a packed batch (``packed_rows`` in ``kwargs``), else plain SDPA.

    ``query``, ``key``, ``value`` are ``(1, heads, tokens, head size)``; each of the layout's
    ``groups`` is one padded block, whose ``gather`` picks each slot's token (padding slots
    repeat a real one, masked out as keys and dropped as queries, so they receive no
    gradient); ``keep`` picks the real slots back out of the blocks' joined outputs.
    """
    import torch
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    # whatever serves "sdpa" now: tunelab's CPU dropout masks wrap it (models.fast_dropout)
    sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]
    layout = kwargs.pop(LAYOUT, None)
    if layout is None:
        return sdpa(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                    **kwargs)  # fmt: skip
    heads, size = query.shape[1], query.shape[-1]
    flat = [states[0].transpose(0, 1).reshape(-1, heads * size) for states in (query, key, value)]
    attended = []
    for group in layout["groups"]:
        mask = group["mask"]  # (rows, 1, 1, longest): True at real tokens
        rows, longest = mask.shape[0], mask.shape[-1]
        blocks = [
            states.index_select(0, group["gather"]).view(rows, longest, heads, size).transpose(1, 2)
            for states in flat
        ]
        output, _ = sdpa(module, *blocks, mask, scaling=scaling, dropout=dropout, is_causal=False)
        attended.append(output.reshape(rows * longest, heads, size))  # (rows, longest, ...)
    joined = attended[0] if len(attended) == 1 else torch.cat(attended)
    return joined.index_select(0, layout["keep"]).unsqueeze(0), None


def length_groups(lengths: Sequence[int], most: int, cost: float) -> list[int]:
    """Where to cut ascending ``lengths`` into at most ``most`` runs: the least rows x
    longest² summed over the runs, plus ``cost`` a run (the ends, ascending, last ``len``)."""
    import numpy as np

    count = len(lengths)
    squares = np.asarray(lengths, dtype=np.float64) ** 2
    starts = np.arange(count)
    # best[g][j]: least work for the first j rows in g runs; cut[g][j]: where the last began
    best = [np.concatenate([[0.0], np.full(count, np.inf)])]
    cut = [np.zeros(count + 1, dtype=np.int64)]
    for _ in range(min(most, count)):
        here, where = np.full(count + 1, np.inf), np.zeros(count + 1, dtype=np.int64)
        for end in range(1, count + 1):  # a run of rows start..end-1 costs its rows x last²
            work = best[-1][:end] + (end - starts[:end]) * squares[end - 1] + cost
            where[end] = int(np.argmin(work))
            here[end] = work[where[end]]
        best.append(here)
        cut.append(where)
    runs = min(range(1, len(best)), key=lambda g: best[g][count])
    ends, end = [], count
    for g in range(runs, 0, -1):
        ends.append(end)
        end = int(cut[g][end])
    return ends[::-1]


def padding_mask_only(*args: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
    """The attention mask :data:`UNPADDED` models get: SDPA's for a padded batch, none for a
    batch without a padding mask.

    A packed batch has no padding mask but restarting position ids, from which transformers
    would build a ``tokens x tokens`` block-diagonal mask every forward (48 MB on a batch of
    6,970 tokens; 1.6% of a step on the zh reviews in ``benchmarks/unpadded_steps.py``); the
    layout already keeps the rows apart in :func:`unpadded_attention`, so none is built.
    :data:`UNPADDED` is set only on models training on :class:`UnpaddedCollator`'s batches,
    which carry the layout whenever they pack.
    """
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def _register() -> None:
    """Make :data:`UNPADDED` an attention implementation (registering again replaces it)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(UNPADDED, unpadded_attention)
    AttentionMaskInterface.register(UNPADDED, padding_mask_only)


def use_unpadded_batches(model: Any) -> int | None:
    """Let ``model`` take packed batches (from :class:`UnpaddedCollator`), in place.

    Applies to the first-token classifiers of :mod:`tunelab.models.first_token` (also under
    a PEFT wrapper) running SDPA attention; padded batches still work as before, and the
    saved config does not change.

    Returns:
        The first position id of a row (RoBERTa-style models count from the padding id + 1),
        or ``None`` when the model cannot take packed batches.
    """
    if not first_token_last_layer(model):  # only BERT-family encoders with a first-token head
        return None
    base = base_model(model)
    config = base.config
    if config.is_decoder or config.chunk_size_feed_forward:
        return None
    if config._attn_implementation not in ("sdpa", UNPADDED):
        return None
    embeddings = getattr(getattr(base, base.base_model_prefix, None), "embeddings", None)
    if embeddings is None or not hasattr(embeddings, "position_embeddings"):
        return None
    _register()
    base.set_attn_implementation(UNPADDED)
    padding_id = getattr(embeddings, "padding_idx", None)
    return 0 if padding_id is None else padding_id + 1


class UnpaddedCollator:
    """Tokenized rows into one packed batch for a model prepared by :func:`use_unpadded_batches`.

    Gives ``input_ids``, ``token_type_ids`` and ``position_ids`` of shape ``(1, tokens)``,
    the rows' ``labels`` and the layout (``packed_rows``). A batch of rows so alike in length
    that padding adds less than :data:`PACK_FROM` goes to ``padded`` (the task's padding
    collator) instead, and so does every batch once ``pad_to_multiple_of`` is set
    (``training.pad_to_multiple_of`` asks for padding).
    """

    def __init__(self, padded: Any, first_position: int = 0) -> None:
        self.padded = padded
        self.first_position = first_position

    @property
    def pad_to_multiple_of(self) -> int | None:
        """The padding collator's own setting: set, every batch is padded to its multiple."""
        return self.padded.pad_to_multiple_of

    @pad_to_multiple_of.setter
    def pad_to_multiple_of(self, multiple: int | None) -> None:
        self.padded.pad_to_multiple_of = multiple

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        lengths = torch.tensor([len(row["input_ids"]) for row in features])
        rows, longest = len(features), int(lengths.max())
        if self.pad_to_multiple_of or rows * longest < PACK_FROM * int(lengths.sum()):
            return self.padded([dict(row) for row in features])
        starts = torch.cumsum(lengths, 0) - lengths
        slots = torch.arange(longest).expand(rows, longest)
        real = slots < lengths.unsqueeze(1)
        batch: dict[str, Any] = {
            "input_ids": torch.tensor([_joined(features, "input_ids")]),
            "position_ids": (slots[real] + self.first_position).unsqueeze(0),
            "token_type_ids": torch.tensor([_joined(features, "token_type_ids")]),
            LAYOUT: {
                **_attention_blocks(lengths, starts),
                "starts": starts,
                # every row in one block, in row order: the last layer's first-token queries
                "rows": _padded_block(lengths, starts),
            },
        }
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([row["labels"] for row in features])
        return batch


def _padded_block(lengths: Any, starts: Any) -> dict[str, Any]:
    """Rows of these ``lengths`` (starting at ``starts`` in the packed row) padded into one
    block: ``gather`` picks each slot's token (padding slots repeat the row's first token,
    masked out as keys and dropped as queries), ``mask`` is True at real tokens."""
    import torch

    rows, longest = len(lengths), int(lengths.max())
    slots = torch.arange(longest).expand(rows, longest)
    real = slots < lengths.unsqueeze(1)
    first = starts.unsqueeze(1)
    return {"gather": torch.where(real, first + slots, first).reshape(-1),
            "mask": real[:, None, None, :]}  # fmt: skip


def _attention_blocks(lengths: Any, starts: Any) -> dict[str, Any]:
    """The packed batch's attention blocks (rows alike in length padded together) and, for
    each token in packed order, where its output lands in the blocks' joined outputs."""
    import torch

    order = torch.argsort(lengths, stable=True)
    ends = length_groups(lengths[order].tolist(), ATTENTION_GROUPS, GROUP_COST)
    keep = torch.empty(int(lengths.sum()), dtype=torch.long)
    groups, begin, offset = [], 0, 0
    for end in ends:
        members = order[begin:end]
        block = _padded_block(lengths[members], starts[members])
        groups.append(block)
        real = block["mask"].view(end - begin, -1)
        # a real slot's output lands at its place in the joined outputs; its token's place in
        # the packed row is what the slot gathers
        keep[block["gather"][real.reshape(-1)]] = offset + real.reshape(-1).nonzero().squeeze(1)
        begin, offset = end, offset + real.numel()
    return {"groups": groups, "keep": keep}


def _joined(features: Sequence[Mapping[str, Any]], name: str) -> list[int]:
    """The rows' ``name`` lists end to end (zeros for rows without them: one segment)."""
    joined: list[int] = []
    for row in features:
        joined.extend(row.get(name) or [0] * len(row["input_ids"]))
    return joined

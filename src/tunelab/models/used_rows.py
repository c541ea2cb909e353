"""Train only the word-embedding rows the training rows use (full fine-tuning on a CPU).

A BERT's vocabulary matrix is half of a small model's weights (30,522 x 384 of MiniLM's
22.7M), yet a fine-tuning set of a few thousand texts uses a few thousand of its rows. The
other rows get an exactly zero gradient at every step, and still cost a full-size gradient
buffer filled with zeros, a term of the gradient norm and a fused AdamW update over them:
13% of a MiniLM step on short English sentences on a 2-core CPU, 4% on 250-token reviews
(README, Speed). Here the used rows become the trained parameter and the rest a frozen
table. Nothing about the training changes: AdamW moves a row whose gradient and moments
are zero only by weight decay, ``p *= 1 - lr * weight_decay`` each step, so the frozen rows
take the product of those factors (one multiply instead of one a step, equal to float
rounding). Held-out rows may hold tokens the training rows never had; they read the frozen
table. ``state_dict`` gives and takes the whole matrix under its usual name, so checkpoints,
the best-checkpoint reload and ``--resume`` see an ordinary model, and
:func:`restore_word_embeddings` puts the ordinary ``nn.Embedding`` back after training.

Only for a model whose input embedding is a plain ``nn.Embedding`` that no other layer
shares: a tied output layer's gradient reaches every row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional


class UsedRowsEmbedding(nn.Module):
    """An ``nn.Embedding`` whose trained weights are the rows of ``used`` alone.

    Args:
        embedding: the model's input embedding: its weight becomes the frozen table, and
            :func:`restore_word_embeddings` puts it back.
        used: the token ids the training batches hold (padding included).
    """

    def __init__(self, embedding: nn.Embedding, used: torch.Tensor) -> None:
        super().__init__()
        weight = embedding.weight.detach()
        used = torch.unique(used.to(torch.long).cpu()).to(weight.device)
        self.num_embeddings, self.embedding_dim = weight.shape
        self.padding_idx = embedding.padding_idx
        # kept out of the module tree (its weight must not reach the optimizer) for
        # restore_word_embeddings; the frozen rows are read from its storage, not copied
        self.__dict__["original"] = embedding
        self.register_buffer("frozen", weight, persistent=False)
        self.register_buffer("used", used, persistent=False)
        slot = torch.full((self.num_embeddings,), -1, dtype=torch.long, device=weight.device)
        slot[used] = torch.arange(len(used), device=weight.device)
        self.register_buffer("slot", slot, persistent=False)
        self.rows = nn.Parameter(weight[used].clone())
        # the padding row gets no gradient in nn.Embedding; the same here, in its slot
        self._padding_slot = int(slot[self.padding_idx]) if self.padding_idx is not None else -1
        self.decay = 1.0  # the product of the weight-decay factors the frozen rows owe
        self.register_state_dict_post_hook(_whole_matrix_out)
        self.register_load_state_dict_pre_hook(_whole_matrix_in)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The embeddings of ``input_ids``, as the full ``nn.Embedding`` gives them."""
        slot = self.slot[input_ids]
        padding = self._padding_slot if self._padding_slot >= 0 else None
        if self.training and torch.is_grad_enabled():
            # a training token outside the rows would silently never learn: refuse it
            if bool((slot < 0).any()):
                unseen = torch.unique(input_ids[slot < 0])[:5].tolist()
                raise RuntimeError(
                    f"a training batch holds token ids {unseen} that no training row held "
                    "when tunelab listed the used embedding rows; set "
                    "training.embedding_rows: all and report this"
                )
            return functional.embedding(slot, self.rows, padding)
        known = slot >= 0
        trained = functional.embedding(slot.clamp_min(0), self.rows)
        frozen = functional.embedding(input_ids, self.frozen)
        if self.decay != 1.0:
            frozen = frozen * self.decay
        return torch.where(known.unsqueeze(-1), trained, frozen)

    def note_step(self, learning_rate: float, weight_decay: float) -> None:
        """Owe the frozen rows one AdamW step's weight decay."""
        self.decay *= 1.0 - learning_rate * weight_decay

    def whole_matrix(self) -> torch.Tensor:
        """The full vocabulary matrix: trained rows in place, the decay applied to the rest."""
        weight = self.frozen * self.decay if self.decay != 1.0 else self.frozen.clone()
        weight[self.used] = self.rows.detach().to(weight.dtype)
        return weight

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, trained rows={len(self.used)}"


def _whole_matrix_out(
    module: UsedRowsEmbedding, state_dict: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    state_dict.pop(prefix + "rows", None)
    state_dict[prefix + "weight"] = module.whole_matrix()


def _whole_matrix_in(
    module: UsedRowsEmbedding, state_dict: dict[str, Any], prefix: str, *args: Any
) -> None:
    weight = state_dict.pop(prefix + "weight", None)
    if weight is None:
        return
    weight = weight.to(module.frozen.device, module.frozen.dtype)
    module.frozen.copy_(weight)
    module.decay = 1.0  # a saved matrix already holds the decay it was owed
    state_dict[prefix + "rows"] = weight[module.used]


def used_token_ids(dataset: Any, column: str = "input_ids") -> torch.Tensor | None:
    """The distinct token ids of a ``datasets.Dataset``'s token column; None without one."""
    import pyarrow.compute as pc

    if column not in getattr(dataset, "column_names", ()):
        return None
    values = dataset.data.column(column)
    while hasattr(values.type, "value_type"):  # lists of ids (or of lists of ids)
        values = pc.list_flatten(values)
    distinct = pc.unique(values).to_numpy(zero_copy_only=False).astype("int64")
    return torch.from_numpy(np.sort(distinct))


def train_used_rows_only(model: Any, used: Iterable[int] | torch.Tensor) -> int | None:
    """Swap the model's input embedding for a :class:`UsedRowsEmbedding` of ``used``.

    Returns:
        The number of trained rows, or None where it does not apply (the embedding is not a
        plain, trained ``nn.Embedding``, or another layer shares its weight).
    """
    embedding = model.get_input_embeddings()
    if type(embedding) is not nn.Embedding or not embedding.weight.requires_grad:
        return None
    if embedding.max_norm is not None or embedding.sparse:
        return None
    weight = embedding.weight
    sharing = [name for name, p in model.named_parameters(remove_duplicate=False) if p is weight]
    if len(sharing) != 1:  # a tied output layer: every row gets a gradient there
        return None
    ids = used if isinstance(used, torch.Tensor) else torch.tensor(list(used), dtype=torch.long)
    if embedding.padding_idx is not None:
        ids = torch.cat([ids.to(torch.long), torch.tensor([embedding.padding_idx])])
    compact = UsedRowsEmbedding(embedding, ids)
    model.set_input_embeddings(compact)
    return len(compact.used)


def restore_word_embeddings(model: Any) -> None:
    """Put the model's own ``nn.Embedding`` back, holding the whole trained matrix."""
    compact = model.get_input_embeddings()
    if not isinstance(compact, UsedRowsEmbedding):
        return
    embedding = compact.original
    with torch.no_grad():
        embedding.weight.copy_(compact.whole_matrix())  # whole_matrix copies before this
    model.set_input_embeddings(embedding)


def owe_weight_decay(optimizer: Any, model: Any) -> Any:
    """After each step of ``optimizer``, owe the model's frozen rows that step's decay.

    Returns:
        The hook's handle (``.remove()`` it when training ends).
    """
    compact = model.get_input_embeddings()
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch one
    group = next(g for g in inner.param_groups if any(p is compact.rows for p in g["params"]))

    def step_taken(*_: Any) -> None:
        compact.note_step(float(group["lr"]), float(group.get("weight_decay", 0.0)))

    return inner.register_step_post_hook(step_taken)

"""``training.embedding_rows: used`` around the Trainer: the swap before training, the weight
decay the frozen rows owe after each optimizer step, and the plain embedding back after."""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

from tunelab.models.used_rows import owe_weight_decay, train_used_rows_only, used_token_ids

log = logging.getLogger(__name__)


class OweWeightDecay(TrainerCallback):  # type: ignore[misc]
    """Hooks the Trainer's optimizer so each step owes the frozen rows its weight decay."""

    def __init__(self) -> None:
        self._hook: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._hook is None:
            self._hook = owe_weight_decay(kwargs["optimizer"], kwargs["model"])

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


def train_used_embedding_rows(parts: Any) -> dict[str, int] | None:
    """Swap in the used-rows embedding where it applies: a CPU run fine-tuning every weight
    of a task whose batches hold only the training rows' tokens. Returns the trained and
    total row counts, or None (nothing swapped)."""
    config, model = parts.config, parts.model
    if config.training.embedding_rows != "used" or config.training.torch_compile:
        return None
    if model.device.type != "cpu" or not parts.task.batch_tokens_from_rows:
        return None
    used = used_token_ids(parts.encoded["train"])
    if used is None or not len(used):
        return None
    total = model.get_input_embeddings().num_embeddings
    trained = train_used_rows_only(model, used)
    if trained is None:
        return None
    log.info("training.embedding_rows used: %s of the %s word-embedding rows are trained, the "
             "ones the training rows use (the rest get no gradient)", f"{trained:,}",
             f"{total:,}")  # fmt: skip
    return {"trained": trained, "total": total}

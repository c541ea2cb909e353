"""``training.embedding_rows: used`` around the Trainer: the swap before training, the weight
decay the frozen rows owe after each optimizer step, and the rows the run's checkpoints were
trained with (so ``--resume`` swaps the same ones in, or none)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from tunelab.models.used_rows import owe_weight_decay, train_used_rows_only, used_token_ids

log = logging.getLogger(__name__)

# in the checkpoints folder, written before the first checkpoint: the embedding rows the
# checkpoints' optimizer state is for (absent: every row, as before this existed)
USED_ROWS_FILE = "used_embedding_rows.json"


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


def train_used_embedding_rows(
    parts: Any, resume_from: str | None = None
) -> tuple[dict[str, int], OweWeightDecay] | None:
    """Swap in the used-rows embedding where it applies: a CPU run fine-tuning every weight
    of a task whose batches hold only the training rows' tokens. A resumed run swaps in the
    rows its checkpoints were trained with, or none, whatever the settings say now: the
    optimizer state it loads has their shape.

    Returns:
        The trained and total row counts and the Trainer callback, or None (no swap).
    """
    config, model = parts.config, parts.model
    marker = Path(parts.checkpoints) / USED_ROWS_FILE
    if resume_from is not None:
        if not marker.is_file():
            return None
        used = torch.tensor(json.loads(marker.read_text(encoding="utf-8"))["rows"])
    else:
        marker.unlink(missing_ok=True)  # an earlier attempt's, in a folder being reused
        applies = (
            config.training.embedding_rows == "used"
            and not config.training.torch_compile
            and model.device.type == "cpu"
            and parts.task.batch_tokens_from_rows
        )
        used = used_token_ids(parts.encoded["train"]) if applies else None
    if used is None or not len(used):
        return None
    total = model.get_input_embeddings().num_embeddings
    trained = train_used_rows_only(model, used)
    if trained is None:
        return None
    if resume_from is None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        rows = model.get_input_embeddings().used.tolist()
        marker.write_text(json.dumps({"rows": rows}), encoding="utf-8")
    log.info("training.embedding_rows used: %s of the %s word-embedding rows are trained, the "
             "ones the training rows use (the rest get no gradient)", f"{trained:,}",
             f"{total:,}")  # fmt: skip
    return {"trained": trained, "total": total}, OweWeightDecay()

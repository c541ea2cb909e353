"""A trained run's model: load it (full weights or base + adapter), fold an adapter in."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tunelab import collector
from tunelab.errors import UserError
from tunelab.models.adapters import is_adapter_folder, load_adapter_model, merged_model
from tunelab.models.load import from_pretrained
from tunelab.models.sentence_encoder import has_sentence_modules
from tunelab.outputs import atomic_folder
from tunelab.tasks import Task, task_from_model_config


def model_folder(path: str | Path) -> Path:
    """The model folder of a run folder (its ``model/``) or of a model folder itself.

    Raises:
        UserError: if ``path`` is neither.
    """
    path = Path(path)
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if not (path / "config.json").is_file():
        raise UserError(
            f"{path} is not a tunelab model folder (no config.json); give a run folder or its "
            "model/ folder"
        )
    return path


def save_base_settings(model: Any, folder: Path) -> None:
    """Beside an adapter: the config (labels, tunelab metadata) and generation settings."""
    import copy

    model_config = copy.deepcopy(model.config)
    if hasattr(model_config, "quantization_config"):  # QLoRA: the saved base loads unquantized
        delattr(model_config, "quantization_config")
    model_config.save_pretrained(folder)
    if model.can_generate() and getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(folder)


def trained_task(model_or_run: str | Path) -> Task:
    """The task a tunelab model folder (or run folder) was trained for, read from its
    ``config.json`` without loading the weights: what a command checks its options against
    before it loads them."""
    from transformers import AutoConfig

    path = model_folder(model_or_run)
    return task_from_model_config(from_pretrained(AutoConfig, str(path)))


def load_trained(model_or_run: str | Path, device: str = "auto") -> tuple[Any, Any, Task, int]:
    """Load a tunelab model folder (or a run folder holding ``model/``).

    Args:
        device: ``auto`` puts the model on the CUDA GPU when there is one; ``cpu`` keeps it
            on the CPU (exports, whose graphs and files are built from CPU tensors).

    Returns:
        model, tokenizer (the task's processor: an image processor for images), task and the
        token limit it was trained with.
    """
    from transformers import AutoConfig

    path = model_folder(model_or_run)
    model_config = from_pretrained(AutoConfig, str(path))
    task = task_from_model_config(model_config)
    if is_adapter_folder(path):
        model = load_adapter_model(path, task.auto_model_class(), model_config)
    elif has_sentence_modules(path) and not task.embeds:  # a few-shot classifier of an encoder
        from tunelab.models.pooled_classifier import PooledClassifier  # imports torch

        model = PooledClassifier.from_pretrained(path)
    else:
        model = from_pretrained(task.auto_model_class(), str(path))
    tokenizer = from_pretrained(task.processor_class(), str(path))
    max_length = int(model_config.tunelab.get("max_length") or 512)
    collector.loaded()  # the command's heavy objects are in memory: later collections skip them
    return on_fastest_device(model, device), tokenizer, task, max_length


def on_fastest_device(model: Any, device: str = "auto") -> Any:
    """``model`` moved to the CUDA GPU when this machine has one and ``device`` is ``auto``
    (predicting, evaluating, serving and explaining then run there, as training does); else
    left where it is."""
    import torch

    if device != "auto" or not torch.cuda.is_available() or next(model.parameters()).is_cuda:
        return model
    return model.to("cuda")


def merge(model_or_run: str | Path, output: str | Path | None = None) -> str:
    """Fold a run's LoRA/IA3 adapter into its base weights: a model that loads without PEFT.

    Args:
        model_or_run: a run folder (or its ``model/``) trained with ``peft.method``.
        output: where the merged model goes; default ``<run>/merged``.

    Returns:
        The merged model folder.

    Raises:
        UserError: if the folder holds no adapter, or one (prompt/prefix tuning) with no
            weights to fold in.
    """

    model_dir = model_folder(model_or_run)
    if not is_adapter_folder(model_dir):
        raise UserError(
            f"{model_dir} holds full weights, not an adapter; it loads without PEFT already"
        )
    model, tokenizer, _, _ = load_trained(model_dir)
    merged = merged_model(model)
    target = Path(output) if output is not None else model_dir.parent / "merged"
    with atomic_folder(target) as folder:
        merged.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        if (model_dir / "tunelab.yaml").is_file():
            shutil.copy(model_dir / "tunelab.yaml", folder / "tunelab.yaml")
    return str(target)

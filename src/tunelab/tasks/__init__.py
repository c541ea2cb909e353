"""Tasks: one module per task behind the protocol in :mod:`tunelab.tasks.base`."""

from __future__ import annotations

from typing import Any

from tunelab.errors import UserError
from tunelab.tasks.audio_classification import AudioClassification
from tunelab.tasks.base import Task
from tunelab.tasks.generation import CausalGeneration, Seq2SeqGeneration
from tunelab.tasks.image_chat import ImageTextToText
from tunelab.tasks.image_classification import ImageClassification
from tunelab.tasks.image_to_text import ImageToText
from tunelab.tasks.preference import PreferenceTuning
from tunelab.tasks.sentence_embedding import SentenceEmbedding
from tunelab.tasks.text_classification import TextClassification
from tunelab.tasks.token_classification import TokenClassification

# One explicit table: a new task is a new module and one line here.
TASKS: dict[str, type[Task]] = {
    TextClassification.name: TextClassification,
    TokenClassification.name: TokenClassification,
    Seq2SeqGeneration.name: Seq2SeqGeneration,
    CausalGeneration.name: CausalGeneration,
    SentenceEmbedding.name: SentenceEmbedding,
    ImageClassification.name: ImageClassification,
    ImageToText.name: ImageToText,
    ImageTextToText.name: ImageTextToText,
    AudioClassification.name: AudioClassification,
    PreferenceTuning.name: PreferenceTuning,
}


def doctor_checks() -> dict[str, str]:
    """What ``tunelab doctor`` checks in each registered task's files (see
    ``Task.doctor_checks``; "task": the checks training makes, for tasks without a doctor of
    their own)."""
    return {name: TASKS[name]().doctor_checks or "task" for name in TASKS}


def task_class(name: str, option: str = "task") -> type[Task]:
    """The registered task called ``name``; the config and the CLI check task names here, where
    the registry is (the config sits below the tasks and cannot import them).

    Args:
        name: a task name.
        option: the config key or command-line option that gave it, for the error.

    Raises:
        UserError: naming ``option`` and the registered tasks, if none is called ``name``.
    """
    if name not in TASKS:
        raise UserError(
            f"{option} '{name}' is not a task tunelab knows; choose one of {', '.join(TASKS)}"
        )
    return TASKS[name]


def task_from_run_config(config: Any) -> Task:
    """The task object a run config describes.

    Raises:
        UserError: if ``config.task`` names no registered task.
    """
    return task_class(config.task).from_run_config(config)


def task_from_model_config(model_config: Any) -> Task:
    """The task object recorded in a saved model's ``config.json`` by tunelab.

    Raises:
        UserError: if the model was not saved by tunelab and names no task.
    """
    meta = getattr(model_config, "tunelab", None) or {}
    name = meta.get("task")
    if name not in TASKS:
        raise UserError(
            "this model folder has no tunelab task metadata in config.json; give the model/ "
            "folder of a tunelab run"
        )
    return TASKS[name].from_metadata(meta, model_config)


__all__ = ["TASKS", "Task", "task_class", "task_from_model_config", "task_from_run_config"]

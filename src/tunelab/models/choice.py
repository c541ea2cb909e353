"""The model a run starts from when the config does not name one (``model.name: auto``).

Chosen from what is on this machine, by the language of the training texts and the task:
a bundled starter or an installed model package that knows the language, else a small
model trained from scratch. Measured on data sets tunelab was never tuned on (README,
"Defaults"): a pretrained model in the data's language beat scratch on every one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunelab.data.language import detect_language
from tunelab.models.catalog import AUDIO, ENCODER, IMAGE, IMAGE_TEXT, STARTERS, VISION_CHAT
from tunelab.models.load import bundled_model_names
from tunelab.models.packaged import PACKAGED_MODELS, install_command, installed_packaged_models

if TYPE_CHECKING:  # the protocol only: the model choice is below the tasks
    from tunelab.tasks.base import Task

AUTO = "auto"
SCRATCH = "scratch-bert"
SCRATCH_VIT = "scratch-vit"  # a small random ViT (models.scratch.save_scratch_vit)
SCRATCH_AUDIO = "scratch-audio"  # a small random Whisper encoder (scratch.save_scratch_audio)
SCRATCH_OCR = "scratch-ocr"  # a small random ViT under a BERT decoder (scratch.save_scratch_ocr)
SCRATCH_VLM = "scratch-vlm"  # a small random SmolVLM (scratch_vlm.save_scratch_vlm)
# model names whose weights start random
SCRATCH_MODELS = (SCRATCH, SCRATCH_VIT, SCRATCH_AUDIO, SCRATCH_OCR, SCRATCH_VLM)
SCRATCH_KIND = ENCODER  # a small BERT: it can classify and tag, not generate
# what each kind of text model is, in the sentence that says why it was chosen
KIND_WORDS = {"encoder": "encoder", "causal": "decoder-only (causal) model",
              "seq2seq": "encoder-decoder model"}  # fmt: skip
# kinds of media model: the scratch model each starts from without a pretrained one, what that
# is, and what a pretrained one would be
MEDIA_SCRATCH = {
    IMAGE: (SCRATCH_VIT, "a small ViT", "any AutoModelForImageClassification checkpoint"),
    AUDIO: (
        SCRATCH_AUDIO,
        "a small Whisper-style audio encoder",
        "any AutoModelForAudioClassification checkpoint: wav2vec2, HuBERT, AST, ...",
    ),
    IMAGE_TEXT: (
        SCRATCH_OCR,
        "a small ViT encoder under a BERT decoder",
        "any VisionEncoderDecoderModel checkpoint: TrOCR, Donut, ...",
    ),
    VISION_CHAT: (
        SCRATCH_VLM,
        "a small SmolVLM-style model (vision encoder, pixel-shuffle connector, Llama decoder)",
        "any AutoModelForImageTextToText chat checkpoint: SmolVLM, Qwen2-VL, LLaVA, ...",
    ),
}
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
    """(name, languages, model kinds, what it is) of every pretrained model usable offline,
    best first: installed real checkpoints before tunelab's own small starters."""
    candidates = [
        (e.hub_id, e.languages, e.kinds, f"installed package {e.distribution}")
        for e in installed_packaged_models()
    ]
    bundled = set(bundled_model_names())
    candidates += [
        (name, languages, kinds, f"bundled starter {name}")
        for name, (languages, kinds, _) in STARTERS.items()
        if name in bundled
    ]
    return candidates


def choose_model(
    task: Task, texts: Iterable[str], answers: Iterable[str] | None = None
) -> ModelChoice:
    """The pretrained model for ``task`` on ``texts`` that this machine has, else scratch.

    Args:
        task: the task; models of its ``model_kind`` are the candidates.
        texts: the training texts (a sample of 2,000 is read).
        answers: for generation, the answers the model learns to write: where they are English
            and the texts are not (Chinese into English), the language is English.

    Chinese generation takes an installed model package (SmolLM2-135M-Instruct, mostly
    English) over the 5M Chinese starter: tuned, it translated better both ways and answered
    Chinese instructions better (``benchmarks/results/model_choice_translation.json``,
    ``model_choice_chinese.json``); without a package the starter is the choice.

    Returns:
        The choice, with a one-sentence reason naming the language and the override.
    """
    if task.model_kind in MEDIA_SCRATCH:
        return _choose_media_model(task)
    language = detect_language(texts)
    read = "texts"
    if answers is not None and language != "en" and detect_language(answers) == "en":
        language, read = "en", "answers"
    spoken = LANGUAGE_NAMES[language]
    candidates = _offline_candidates()
    kind = task.model_kind
    installed = next((e for e in installed_packaged_models() if kind in e.kinds), None)
    starter = next((name for name, (_, kinds, _) in STARTERS.items() if kind in kinds), None)
    if language == "zh" and kind != SCRATCH_KIND and installed is not None and starter:
        return ModelChoice(
            installed.hub_id, language,
            f"the training {read} are {spoken} and installed package {installed.distribution} "
            f"is a pretrained {KIND_WORDS.get(installed.kinds[0], kind)} that, fine-tuned, "
            f"wrote Chinese better than the small Chinese starter {starter}, at many times its "
            f"compute (--model {starter} for a quick run); --model overrides it",
        )  # fmt: skip
    for name, languages, kinds, what in candidates:
        if kind in kinds and (language in languages or "multi" in languages):
            return ModelChoice(
                name, language,
                f"the training {read} are {spoken} and {what} is a pretrained "
                f"{KIND_WORDS.get(kinds[0], kinds[0])} in that language available offline for "
                f"{task.name}; --model overrides it",
            )  # fmt: skip
    generative = [name for name, _, kinds, _ in candidates if kind in kinds]
    if generative and kind != SCRATCH_KIND:
        # scratch-bert is an encoder and cannot generate, so any model of the task's kind
        # beats it
        return ModelChoice(
            generative[0], language,
            f"no offline {task.name} model knows {spoken} text; {generative[0]} is the only "
            "generative model on this machine; --model overrides it",
        )  # fmt: skip
    hint = ""
    english = next((e for e in PACKAGED_MODELS if "en" in e.languages and kind in e.kinds), None)
    if language == "en" and english is not None:
        hint = (
            f" ({install_command(english)} brings the real {english.hub_id}, "
            f"{english.download_mb} MB)"
        )
    return ModelChoice(
        SCRATCH, language,
        f"the training texts are {spoken} and no pretrained {task.name} model in that language "
        f"is available offline{hint}; training a small model from scratch, which a pretrained "
        "model beats: pass one with --model",
    )  # fmt: skip


def scratch_model(kind: str) -> str:
    """The scratch model for a task's ``model_kind``: scratch-vit for images, scratch-audio for
    audio, scratch-bert for the rest (which can be fine-tuned on it or refuse it)."""
    return MEDIA_SCRATCH[kind][0] if kind in MEDIA_SCRATCH else SCRATCH


def _choose_media_model(task: Task) -> ModelChoice:
    """An installed model of the task's media kind if a package brings one, else the small
    model of that kind from scratch."""
    kind = task.model_kind
    for name, _, kinds, what in _offline_candidates():
        if kind in kinds:
            return ModelChoice(
                name, "",
                f"{what} is a pretrained {kind} model available offline; --model overrides it",
            )  # fmt: skip
    scratch, described, pretrained = MEDIA_SCRATCH[kind]
    return ModelChoice(
        scratch, "",
        f"no pretrained {task.name} model is available offline; training {described} from "
        f"scratch, which a pretrained one ({pretrained}) beats: pass one with --model",
    )  # fmt: skip

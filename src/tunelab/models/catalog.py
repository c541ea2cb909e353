"""Which model to fine-tune: a small catalog of well-known models, and advice from it.

The catalog is data: each card names a model, the languages and tasks it suits and its
architecture numbers, so sizes, memory and time are computed offline
(:mod:`tunelab.models.memory`). The bundled starters read theirs from ``models/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunelab.errors import UserError
from tunelab.models.load import BUNDLED_MODELS_DIR
from tunelab.models.memory import (
    Architecture,
    MemoryEstimate,
    architecture_from_config,
    estimate_epoch_seconds,
    estimate_memory,
)

if TYPE_CHECKING:  # the protocol only: the catalog is below the tasks
    from tunelab.tasks.base import Task

LANGUAGES = ("zh", "en", "multi")
# The kinds of model a task fine-tunes (its ``model_kind``), as the cards tag them: an encoder
# under a small head; a model that turns a source text into a target text; one that continues
# a prompt or a chat. Only the encoder does without a head over the whole vocabulary.
ENCODER, SEQ2SEQ, CAUSAL = "encoder", "seq2seq", "causal"
IMAGE = "image"  # an image encoder under a classification head (ViT, ConvNeXt, ...)
AUDIO = "audio"  # an audio encoder under a classification head (wav2vec2, HuBERT, AST, ...)
IMAGE_TEXT = "image-text"  # an image encoder under a text decoder (TrOCR, Donut)
VISION_CHAT = "vision-chat"  # a chat model that reads images (SmolVLM, Qwen2-VL, LLaVA, ...)
FEW_SHOT_PER_CLASS = 50  # below this many examples per class, contrastive few-shot wins
LORA_ABOVE_PARAMETERS = 1_000_000_000


@dataclass(frozen=True)
class ModelCard:
    """One catalog entry.

    Attributes:
        name: hub id, or the bundled starter's name.
        languages: ``zh``, ``en`` and/or ``multi`` (many languages, Chinese and English among
            them).
        kinds: the kinds of model it can be fine-tuned as (a task's ``model_kind``).
        arch: its architecture numbers.
        note: what it is, in a few words.
        local: whether it ships in ``models/`` (no download needed).
        sentence_embeddings: trained for sentence embeddings, the best few-shot bodies.
    """

    name: str
    languages: tuple[str, ...]
    kinds: tuple[str, ...]
    arch: Architecture
    note: str
    local: bool = False
    sentence_embeddings: bool = False


def _bert(layers: int, hidden: int, vocab: int, family: str = "bert") -> Architecture:
    types, positions = (2, 512) if family == "bert" else (1, 514)
    return Architecture(family, layers, hidden, hidden // 64, 4 * hidden, vocab,
                        positions=positions, token_types=types)  # fmt: skip


def _t5(layers: int, hidden: int, heads: int, ff: int, vocab: int, gated: bool) -> Architecture:
    # mT5 checkpoints keep a separate output layer (300M/582M published); note that
    # transformers 5 ties it to the input embeddings when it loads them.
    return Architecture(
        "t5", layers, hidden, heads, ff, vocab, head_dim=64, decoder_layers=layers,
        gated_mlp=gated, tied_embeddings=not gated,
    )  # fmt: skip


def _qwen(layers: int, hidden: int, heads: int, kv: int, ff: int, vocab: int, tied: bool):
    return Architecture("qwen2", layers, hidden, heads, ff, vocab, kv_heads=kv,
                        tied_embeddings=tied, weight_bytes=2)  # fmt: skip


CLASSIFY = (ENCODER,)
# Best first within each language: the ranking keeps this order among models that fit.
HUB_MODELS: tuple[ModelCard, ...] = (
    ModelCard("hfl/chinese-macbert-base", ("zh",), CLASSIFY, _bert(12, 768, 21128),
              "BERT-base, MLM-as-correction pretraining; strong Chinese baseline"),
    ModelCard("hfl/chinese-roberta-wwm-ext", ("zh",), CLASSIFY, _bert(12, 768, 21128),
              "BERT-base, whole-word masking on 5.4B Chinese words"),
    ModelCard("bert-base-chinese", ("zh",), CLASSIFY, _bert(12, 768, 21128),
              "the original Chinese BERT-base (character level)"),
    ModelCard("BAAI/bge-small-zh-v1.5", ("zh",), CLASSIFY, _bert(4, 512, 21128),
              "small sentence-embedding encoder: a good few-shot body",
              sentence_embeddings=True),
    ModelCard("microsoft/deberta-v3-base", ("en",), CLASSIFY,
              Architecture("deberta", 12, 768, 12, 3072, 128100, positions=512),
              "strongest base-size English encoder for classification"),
    ModelCard("roberta-base", ("en",), CLASSIFY, _bert(12, 768, 50265, "roberta"),
              "RoBERTa-base, byte-level BPE"),
    ModelCard("bert-base-uncased", ("en",), CLASSIFY, _bert(12, 768, 30522),
              "the original English BERT-base"),
    ModelCard("xlm-roberta-base", ("multi",), CLASSIFY, _bert(12, 768, 250002, "xlm-roberta"),
              "100 languages; most of its weights are the 250k-token vocabulary"),
    ModelCard("xlm-roberta-large", ("multi",), CLASSIFY, _bert(24, 1024, 250002, "xlm-roberta"),
              "100 languages, large: best multilingual encoder here, needs data and memory"),
    ModelCard("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", ("multi",),
              CLASSIFY, Architecture("bert", 12, 384, 12, 1536, 250037, positions=512,
                                     token_types=2),
              "multilingual sentence embeddings: a good few-shot body",
              sentence_embeddings=True),
    ModelCard("Helsinki-NLP/opus-mt-en-zh", ("en", "zh"), (SEQ2SEQ,),
              Architecture("marian", 6, 512, 8, 2048, 65001, positions=512, decoder_layers=6),
              "English-to-Chinese translation model (Marian)"),
    ModelCard("google/mt5-base", ("multi",), (SEQ2SEQ,), _t5(12, 768, 12, 2048, 250112, True),
              "multilingual T5 (101 languages), base"),
    ModelCard("google/mt5-small", ("multi",), (SEQ2SEQ,), _t5(8, 512, 6, 1024, 250112, True),
              "multilingual T5 (101 languages), small"),
    ModelCard("t5-base", ("en",), (SEQ2SEQ,), _t5(12, 768, 12, 3072, 32128, False),
              "English T5, base"),
    ModelCard("facebook/bart-base", ("en",), (SEQ2SEQ,),
              Architecture("bart", 6, 768, 12, 3072, 50265, positions=1024, decoder_layers=6),
              "English BART, base: summarisation, rewriting"),
    ModelCard("t5-small", ("en",), (SEQ2SEQ,), _t5(6, 512, 8, 2048, 32128, False),
              "English T5, small"),
    ModelCard("Qwen/Qwen2.5-7B-Instruct", ("multi",), (CAUSAL,),
              _qwen(28, 3584, 28, 4, 18944, 152064, tied=False),
              "7B instruction model, strong in Chinese and English"),
    ModelCard("Qwen/Qwen2.5-1.5B-Instruct", ("multi",), (CAUSAL,),
              _qwen(28, 1536, 12, 2, 8960, 151936, tied=True),
              "1.5B instruction model, Chinese and English"),
    ModelCard("meta-llama/Llama-3.2-1B-Instruct", ("multi",), (CAUSAL,),
              Architecture("llama", 16, 2048, 32, 8192, 128256, kv_heads=8, head_dim=64,
                           weight_bytes=2),
              "1B instruction model, English first (gated on the hub)"),
    ModelCard("Qwen/Qwen2.5-0.5B-Instruct", ("multi",), (CAUSAL,),
              _qwen(24, 896, 14, 2, 4864, 151936, tied=True),
              "0.5B instruction model: the smallest that follows instructions well"),
)  # fmt: skip

STARTERS = {
    "zh-bert-mini": (("zh",), CLASSIFY, "bundled 4-layer ModernBERT starter (offline)"),
    "zh-llama-mini": (("zh",), (CAUSAL, SEQ2SEQ), "bundled 4-layer Llama starter"),
}


def bundled_cards() -> list[ModelCard]:
    """Cards of the starter models in ``models/``, their architecture read from config.json."""
    from types import SimpleNamespace

    cards = []
    for name, (languages, kinds, note) in STARTERS.items():
        path = BUNDLED_MODELS_DIR / name / "config.json"
        if path.is_file():
            config = SimpleNamespace(**json.loads(path.read_text(encoding="utf-8")))
            arch = architecture_from_config(config)
            cards.append(ModelCard(name, languages, kinds, arch, note, local=True))
    return cards


def catalog() -> list[ModelCard]:
    """Every card: the hub models, then the bundled starters."""
    return [*HUB_MODELS, *bundled_cards()]


def parse_memory(text: str, option: str = "--gpu-memory") -> int:
    """Bytes from ``24GB``, ``24G``, ``24GiB``, ``16000MB`` or a bare number of GB.

    Raises:
        UserError: naming ``option`` when the text is not such a size.
    """
    units = {"": 2**30, "g": 2**30, "gb": 2**30, "gib": 2**30, "m": 2**20, "mb": 2**20,
             "mib": 2**20, "t": 2**40, "tb": 2**40, "tib": 2**40}  # fmt: skip
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("abgikmt")
    unit = cleaned[len(number) :]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or value <= 0:
        raise UserError(
            f"{option} '{text}' is not a memory size; give a number with a unit, e.g. 24GB"
        )
    return int(value * units[unit])


def device_memory() -> tuple[str, int]:
    """This machine's training device and the memory it offers: the CUDA GPU's total, or
    the RAM available now."""
    import torch

    if torch.cuda.is_available():
        return "cuda", int(torch.cuda.get_device_properties(0).total_memory)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = dict(line.split(":", 1) for line in f)
        return "cpu", int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError):
        return "cpu", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Option:
    """One model, its costs, and the method tunelab advises for it.

    Attributes:
        card: the model.
        estimates: memory estimates by method (``full``, ``lora`` and, with CUDA, ``qlora``).
        epoch_seconds: rough training time of one epoch by method, on this machine (its
            GPU if it has one, else its CPU).
        method: the advised ``full``, ``lora``, ``qlora`` or ``few-shot``; ``none`` when
            nothing fits in the memory.
        reason: why, in a few words.
    """

    card: ModelCard
    estimates: dict[str, MemoryEstimate]
    epoch_seconds: dict[str, float]
    method: str
    reason: str

    @property
    def fits(self) -> bool:
        """Whether the advised method fits in the memory."""
        return self.method != "none"


def _method(card: ModelCard, estimates: dict[str, MemoryEstimate], memory: int,
            few_shot: bool) -> tuple[str, str]:  # fmt: skip
    params = estimates["full"].parameters
    if few_shot and card.arch.kind == "encoder" and estimates["full"].peak <= memory:
        return "few-shot", f"under {FEW_SHOT_PER_CLASS} examples per class"
    if params <= LORA_ABOVE_PARAMETERS and estimates["full"].peak <= memory:
        return "full", "fits in memory"
    reason = "over 1B parameters" if params > LORA_ABOVE_PARAMETERS else "full does not fit"
    if estimates["lora"].peak <= memory:
        return "lora", reason
    if "qlora" in estimates and estimates["qlora"].peak <= memory:
        return "qlora", reason + "; LoRA does not fit either"
    return "none", "does not fit even with " + ("QLoRA" if "qlora" in estimates else "LoRA")


def recommend(
    task: Task,
    language: str,
    examples: int,
    classes: int = 2,
    memory: int | None = None,
    max_length: int = 128,
    batch_size: int = 32,
    device: str | None = None,
) -> list[Option]:
    """The catalog's models for ``task`` and ``language``, with costs and advice, best first.

    Models that fit come first; with few examples, sentence-embedding models (the best
    few-shot bodies); then language-specific ones before multilingual ones; then the
    catalog's order. Few-shot (``training.method: few-shot``) is advised for a task that
    trains few-shot under :data:`FEW_SHOT_PER_CLASS` examples per class; LoRA for models over
    1B parameters or too big to fine-tune fully; QLoRA only where a CUDA GPU trains.

    Args:
        task: the task; the cards of its ``model_kind`` are the candidates.
        language: ``zh``, ``en`` or ``multi``.
        examples: training examples.
        classes: classes (a task that trains few-shot), for examples per class.
        memory: bytes the training may use; default: this machine's (GPU or free RAM).
        max_length: tokens per example at most.
        batch_size: examples per step.
        device: ``cpu`` or ``cuda``: where the memory is; default: this machine's. A given
            ``memory`` with no device means a CUDA GPU of that size (QLoRA then counts).
            Times are always this machine's.

    Raises:
        UserError: for an unknown language, or a count below 1.
    """
    if language not in LANGUAGES:
        raise UserError(f"unknown --language '{language}'; choose one of {', '.join(LANGUAGES)}")
    for option, value in (("--examples", examples), ("--classes", classes),
                          ("--max-length", max_length), ("--batch-size", batch_size)):  # fmt: skip
        if value < 1:
            raise UserError(f"{option} must be a positive whole number, got {value}")
    here, available = device_memory()
    if device is None:
        device = "cuda" if memory is not None else here
    if memory is None:
        memory = available
    lm_head = task.model_kind != ENCODER
    few_shot = task.trains_few_shot and examples / classes < FEW_SHOT_PER_CLASS
    methods = ("full", "lora", "qlora") if device == "cuda" else ("full", "lora")
    cards = [
        c for c in catalog()
        if task.model_kind in c.kinds and (language in c.languages or
                                (language != "multi" and "multi" in c.languages))
    ]  # fmt: skip
    options = []
    for card in cards:
        estimates = {m: estimate_memory(card.arch, batch_size, max_length, m, lm_head=lm_head,
                                        device=device) for m in methods}  # fmt: skip
        seconds = {m: estimate_epoch_seconds(card.arch, examples, max_length, m,
                                             lm_head=lm_head, device=here)
                   for m in ("full", "lora")}  # fmt: skip
        method, reason = _method(card, estimates, memory, few_shot)
        options.append(Option(card, estimates, seconds, method, reason))
    order = {id(c): i for i, c in enumerate(cards)}
    return sorted(
        options,
        key=lambda o: (not o.fits, few_shot and not o.card.sentence_embeddings,
                       language not in o.card.languages, order[id(o.card)]),
    )  # fmt: skip


def recommendation_json(options: list[Option]) -> list[dict[str, Any]]:
    """The options as JSON-able dicts (sizes in bytes, times in seconds)."""
    return [
        {
            "model": o.card.name,
            "local": o.card.local,
            "family": o.card.arch.family,
            "parameters": o.estimates["full"].parameters,
            "method": o.method,
            "reason": o.reason,
            "memory_bytes": {m: e.peak for m, e in o.estimates.items()},
            "trainable_parameters": {m: e.trainable for m, e in o.estimates.items()},
            "epoch_seconds": {m: round(s, 1) for m, s in o.epoch_seconds.items()},
            "note": o.card.note,
        }
        for o in options
    ]


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.0f} d"


def format_options(options: list[Option], memory: int, device: str, here: str) -> str:
    """A table of the options (best first) and the advice that follows from it."""
    methods = [m for m in ("full", "lora", "qlora") if options and m in options[0].estimates]
    header = ["model", "params", "advice", *(f"mem {m}" for m in methods),
              "epoch full", "epoch lora"]  # fmt: skip
    rows = [header]
    for o in options:
        rows.append([
            o.card.name + (" (local)" if o.card.local else ""),
            _count(o.estimates["full"].parameters),
            o.method,
            *(_size(o.estimates[m].peak) for m in methods),
            *(_duration(o.epoch_seconds[m]) for m in ("full", "lora")),
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        f"memory: {_size(memory)} ({'CUDA GPU' if device == 'cuda' else 'RAM available'}); "
        f"epoch times on this machine's {'GPU' if here == 'cuda' else 'CPU'}, at most "
        "(dynamic padding shortens batches of short texts)",
        "",
        *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows),
        "",
    ]
    advised = {o.method for o in options}
    if "few-shot" in advised:
        lines.append(
            f"few-shot: under {FEW_SHOT_PER_CLASS} examples per class, contrastive few-shot "
            "training (--set training.method=few-shot) beats fine-tuning; sentence-embedding "
            "models make the best bodies"
        )
    if "lora" in advised or "qlora" in advised:
        lines.append(
            "lora: models over 1B parameters, or too big to fine-tune fully, train adapters "
            "(--peft lora; --peft qlora keeps the base in 4 bits, CUDA only)"
        )
    if any(o.estimates["lora"].peak > o.estimates["full"].peak for o in options):
        lines.append(
            "note: LoRA saves gradients and optimizer states but its dropout keeps a mask per "
            "adapted layer, so on small models at large batches it needs more memory than "
            "full fine-tuning (--set peft.dropout=0 drops the masks)"
        )
    if not any(o.fits for o in options):
        lines.append(
            "nothing fits: lower --batch-size or --max-length (activations shrink with both)"
        )
    return "\n".join(lines)

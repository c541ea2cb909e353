"""Shared fixtures: tiny random models built in code and small generated data sets; and the
test tiers: tests that train a model or start a process are marked ``slow`` here."""

from __future__ import annotations

import ast
import functools
import inspect
import random
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

POSITIVE = ["很好", "喜欢", "满意", "不错", "推荐"]
NEGATIVE = ["很差", "失望", "退货", "糟糕", "难用"]
FILLER = list("这个东西我们买了用起来觉得还是价格包装物流快递质量外观手机电脑书")
PERSONS = ["张三", "李小明", "王芳"]
PLACES = ["北京", "上海", "广州"]
# a two-turn conversation about two images, in content parts (as tunelab reads every form)
TWO_IMAGE_CHAT = [
    {"role": "system", "content": [{"type": "text", "text": "Read carefully."}]},
    {
        "role": "user",
        "content": [
            {"type": "image"},
            {"type": "text", "text": "Which is red?"},
            {"type": "image"},
        ],
    },
    {"role": "assistant", "content": [{"type": "text", "text": "The first."}]},
    {"role": "user", "content": [{"type": "text", "text": "Sure?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]},
]

# what makes a test slow: calling one of these (itself, through a helper or fixture of the test
# suite, or as a CLI command), unless the call stands inside `with pytest.raises(...)`, where
# it stops at the first check, before any model is loaded
TRAINING_FUNCTIONS = {"train", "pretrain", "learning_curve", "search", "train_few_shot"}
TRAINING_RECEIVERS = {"tunelab", "api", "trainer"}  # tunelab.train(...), trainer.train()
TRAINING_COMMANDS = {"train", "pretrain", "curve", "search"}
CLI_RUNNERS = {"invoke", "run_cli"}
PROCESS_FUNCTIONS = {"run", "Popen", "check_call", "check_output"}  # of subprocess


def _is_slow_call(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name) and func.id in TRAINING_FUNCTIONS:
        return True
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        receiver = func.value.id
        if func.attr == "train" and receiver in TRAINING_RECEIVERS:
            return True
        if receiver == "subprocess" and func.attr in PROCESS_FUNCTIONS:
            return True
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    if name in CLI_RUNNERS:
        for arg in call.args:
            if isinstance(arg, ast.List) and arg.elts and isinstance(arg.elts[0], ast.Constant):
                return arg.elts[0].value in TRAINING_COMMANDS
    return False


def _calls_outside_raises(tree: ast.AST) -> list[ast.Call]:
    """The calls in ``tree``, leaving out those inside ``with pytest.raises(...)``."""
    found: list[ast.Call] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.With) and any(
            isinstance(item.context_expr, ast.Call)
            and getattr(item.context_expr.func, "attr", "") == "raises"
            for item in node.items
        ):
            return
        if isinstance(node, ast.Call):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@functools.cache
def _trains_or_spawns(func: Callable[..., Any]) -> bool:
    """Whether ``func``, or a function of the test suite it calls, trains or starts a process."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return False
    for call in _calls_outside_raises(tree):
        if _is_slow_call(call):
            return True
        if isinstance(call.func, ast.Name):
            helper = getattr(func, "__globals__", {}).get(call.func.id)
            if (
                inspect.isfunction(helper)
                and helper.__module__.startswith("tests")
                and helper is not func
                and _trains_or_spawns(helper)
            ):
                return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that trains a model or starts a process, itself or through
    its fixtures, so that ``pytest -m "not slow"`` (``make test-fast``) leaves them out."""
    for item in items:
        functions = [getattr(item, "function", None)]
        fixture_info = getattr(item, "_fixtureinfo", None)
        for definitions in getattr(fixture_info, "name2fixturedefs", {}).values():
            functions += [d.func for d in definitions if d.func.__module__.startswith("tests")]
        if any(f is not None and _trains_or_spawns(f) for f in functions):
            item.add_marker(pytest.mark.slow)


def make_entities(n: int, seed: int = 0) -> list[dict[str, list[str]]]:
    """Character-tokenized sentences with persons and places in BIO tags."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tokens: list[str] = []
        tags: list[str] = []
        for _ in range(rng.randint(1, 3)):
            filler = rng.choices(FILLER, k=rng.randint(1, 5))
            tokens += filler
            tags += ["O"] * len(filler)
            kind = rng.choice(["PER", "LOC"])
            entity = rng.choice(PERSONS if kind == "PER" else PLACES)
            tokens += list(entity)
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
        rows.append({"tokens": tokens, "tags": tags})
    return rows


def make_reviews(n: int, seed: int = 0) -> pd.DataFrame:
    """Short Chinese 'reviews' whose label follows from a sentiment word in them."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        word = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
        left = "".join(rng.choices(FILLER, k=rng.randint(2, 12)))
        right = "".join(rng.choices(FILLER, k=rng.randint(0, 6)))
        rows.append({"text": f"{left}{word}{right}", "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with hidden size 32 and a character vocabulary, saved as an HF folder."""
    from tunelab.models.scratch import save_scratch_bert

    texts = [
        *make_reviews(400)["text"],
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "".join(PERSONS + PLACES),
    ]
    return save_scratch_bert(
        texts, tmp_path_factory.mktemp("tiny-bert"), layers=2, hidden=32, heads=2, seed=0
    )


@pytest.fixture(scope="session")
def tiny_sentiment_body(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT's body after 60 steps of sentiment training, saved without a head: a
    'pretrained' encoder whose features already separate the reviews, as adapters expect."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    data = make_reviews(400, seed=5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(60):
        batch = data.sample(32, random_state=step)
        inputs = tokenizer(list(batch["text"]), padding=True, return_tensors="pt")
        labels = torch.tensor((batch["label"] == "positive").astype(int).to_numpy())
        model(**inputs, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    out = tmp_path_factory.mktemp("tiny-sentiment-body")
    model.base_model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    """A CSV file of 300 generated reviews with text and label columns."""
    path = tmp_path / "reviews.csv"
    make_reviews(300).to_csv(path, index=False)
    return path


def tiny_run_config(tiny_bert: Path, train: Path, output: Path, **sections: dict) -> dict:
    """A run config dict that trains the tiny model quickly."""
    config = {
        "output": str(output),
        "data": {"train": str(train)},
        "model": {"name": str(tiny_bert)},
        "training": {
            "epochs": 3,
            "learning_rate": 3e-3,
            "batch_size": 16,
            "logging_steps": 1000,
            "early_stopping_patience": None,
        },
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


WORDS = {"red": "红", "green": "绿", "blue": "蓝", "cat": "猫", "dog": "狗", "big": "大"}


def make_translations(n: int, seed: int = 0) -> list[dict[str, str]]:
    """'Translate the first word': a word, then up to three others; the target is the first
    word's 'Chinese'. Learnable by a 2-layer model in seconds (word order is not)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = rng.choices(list(WORDS), k=rng.randint(1, 4))
        rows.append({"source": " ".join(words), "target": WORDS[words[0]]})
    return rows


def _pair_texts() -> list[str]:
    return [" ".join(WORDS) + " " + "".join(WORDS.values())] * 4 + [
        r["source"] + " " + r["target"] for r in make_translations(200)
    ]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (hidden 32) with a byte-level BPE tokenizer and ChatML template."""
    import torch

    from tunelab.models.scratch import new_llama_clm
    from tunelab.models.tokenizer_training import byte_level_bpe_tokenizer

    torch.manual_seed(0)
    tokenizer = byte_level_bpe_tokenizer(_pair_texts(), vocab_size=400)
    model = new_llama_clm(tokenizer, layers=2, hidden=32, heads=2, max_positions=256)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _tiny_seq2seq(out: Path, family: str) -> Path:
    import torch
    from transformers import BartConfig, BartForConditionalGeneration, T5Config

    from tunelab.models.tokenizer_training import character_tokenizer

    torch.manual_seed(0)
    tokenizer = character_tokenizer(_pair_texts())
    ids = {"pad": tokenizer.pad_token_id, "bos": tokenizer.cls_token_id,
           "eos": tokenizer.sep_token_id}  # fmt: skip
    if family == "t5":
        from transformers import T5ForConditionalGeneration

        config = T5Config(
            vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=2,
            num_heads=2, pad_token_id=ids["pad"], eos_token_id=ids["eos"],
            decoder_start_token_id=ids["pad"],
        )  # fmt: skip
        model = T5ForConditionalGeneration(config)
    else:
        config = BartConfig(
            vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
            decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=ids["pad"],
            bos_token_id=ids["bos"], eos_token_id=ids["eos"],
            decoder_start_token_id=ids["eos"], forced_eos_token_id=None,
        )  # fmt: skip
        model = BartForConditionalGeneration(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer T5 (d_model 32) with a character vocabulary."""
    return _tiny_seq2seq(tmp_path_factory.mktemp("tiny-t5"), "t5")


@pytest.fixture(scope="session")
def tiny_bart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BART (d_model 32) with a character vocabulary."""
    return _tiny_seq2seq(tmp_path_factory.mktemp("tiny-bart"), "bart")


COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def make_colour_images(folder: Path, per_class: int = 12, seed: int = 0, size: int = 16) -> Path:
    """Noisy 16x16 images of three colours in class sub-folders (PNG, JPEG, WebP, GIF, BMP,
    some grayscale-free RGBA): a tiny ViT tells them apart in a few epochs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    formats = ["png", "jpg", "webp", "gif", "bmp"]
    for name, colour in COLOURS.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-30, 30, (size, size, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            suffix = formats[i % len(formats)]
            if suffix == "png" and i % 2:
                image = image.convert("RGBA")
            image.save(folder / name / f"{name}-{i}.{suffix}")
    return folder


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer ViT with hidden size 32 for 16x16 images, and its image processor."""
    from tunelab.models.scratch import save_scratch_vit

    return save_scratch_vit(
        tmp_path_factory.mktemp("tiny-vit"), image_size=16, patch_size=4, layers=2, hidden=32,
        heads=2, seed=0,
    )  # fmt: skip


TONES = {"low": 300.0, "mid": 800.0, "high": 2000.0}
# (suffix, sample rate, channels) in turn: every format and rate the loader must bring to the
# model's 16 kHz mono
CLIP_FORMATS = [("wav", 16000, 1), ("flac", 22050, 2), ("ogg", 44100, 1), ("wav", 8000, 2)]


def tone(frequency: float, seconds: float, rate: int = 16000, level: float = 0.4) -> Any:
    """A sine wave as float32 samples."""
    import numpy as np

    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def make_tone_clips(folder: Path, per_class: int = 12, seed: int = 0) -> Path:
    """Noisy tones of three pitches (300, 800, 2000 Hz, +-5%) in class sub-folders, 0.5-1 s
    long, as WAV, FLAC and OGG at 8-44.1 kHz, some stereo: a tiny audio model tells them apart
    in a few epochs."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    for name, frequency in TONES.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            suffix, rate, channels = CLIP_FORMATS[i % len(CLIP_FORMATS)]
            samples = tone(frequency * rng.uniform(0.95, 1.05), rng.uniform(0.5, 1.0), rate)
            samples = samples + rng.normal(0, 0.02, len(samples)).astype(np.float32)
            if channels == 2:
                samples = np.stack([samples, samples * 0.5], axis=1)
            sf.write(folder / name / f"{name}-{i}.{suffix}", samples, rate)
    return folder


@pytest.fixture(scope="session")
def tiny_audio_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scratch-audio at 2 layers, hidden 32, 32 mel bands and a 1 s window, with its feature
    extractor."""
    from tunelab.models.scratch import save_scratch_audio

    return save_scratch_audio(
        tmp_path_factory.mktemp("tiny-audio"), seconds=1.0, mel_bins=32, layers=2, hidden=32,
        heads=2, seed=0,
    )  # fmt: skip


@pytest.fixture
def sync_retrains(monkeypatch: pytest.MonkeyPatch) -> None:
    """The labelling sessions retrain their queue's model before a label returns, as in a
    simulation, instead of in a thread: for tests that script answers faster than a fit."""
    from tunelab.labelling.queue import LabelQueue

    monkeypatch.setattr(LabelQueue, "_start_fit", LabelQueue.retrain)

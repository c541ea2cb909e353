"""Shared fixtures: tiny random models built in code and small generated data sets."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

POSITIVE = ["很好", "喜欢", "满意", "不错", "推荐"]
NEGATIVE = ["很差", "失望", "退货", "糟糕", "难用"]
FILLER = list("这个东西我们买了用起来觉得还是价格包装物流快递质量外观手机电脑书")
PERSONS = ["张三", "李小明", "王芳"]
PLACES = ["北京", "上海", "广州"]


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

"""zh-chart-qa: bar charts drawn from random figures with Chinese questions whose answers are
in the picture; the pixels agree with the answers, and tunelab reads the files as chats with
images."""

from __future__ import annotations

import json

import numpy as np

from tunelab.data.chart_questions import (
    COLOURS,
    QUESTIONS,
    SIZE,
    answer,
    build_zh_chart_qa,
    draw_chart,
)
from tunelab.data.load import read_table
from tunelab.tasks.image_chat import ImageTextToText

ROWS = {"train": 16, "validation": 4, "test": 8}


def test_answers_follow_the_figures() -> None:
    names, heights = ["红色", "蓝色", "黄色", "黑色"], [0.3, 0.9, 0.15, 0.5]
    assert answer("count", names, heights) == "四根"
    assert answer("tallest_colour", names, heights) == "蓝色"
    assert answer("shortest_colour", names, heights) == "黄色"
    assert answer("tallest_position", names, heights) == "第二根"


def test_the_drawn_bars_are_the_ones_the_answers_describe() -> None:
    """Each named colour covers a column of pixels as tall as its figure, and no other
    palette colour appears."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        image, names, heights = draw_chart(rng)
        pixels = np.asarray(image, dtype=np.float64)
        assert image.size == (SIZE, SIZE)
        tall = {}
        for name, rgb in COLOURS.items():
            near = np.linalg.norm(pixels - np.array(rgb), axis=-1) < 50
            rows = near.sum(axis=1) >= 2  # a bar is at least two pixels wide
            tall[name] = int(rows.sum())
        assert {name for name, rows in tall.items() if rows > 4} == set(names)
        assert max(names, key=tall.__getitem__) == answer("tallest_colour", names, heights)
        assert min(names, key=tall.__getitem__) == answer("shortest_colour", names, heights)


def test_chats_with_images_that_tunelab_reads(tmp_path) -> None:
    summary = build_zh_chart_qa(tmp_path / "a", rows=ROWS)
    assert summary["rows"] == ROWS
    for split, count in ROWS.items():
        lines = (tmp_path / "a" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == count
        chat = json.loads(lines[0])
        assert chat["messages"][0]["content"].removeprefix("<image>") in QUESTIONS.values()
        assert (tmp_path / "a" / chat["images"][0]).is_file()
    frame = read_table(tmp_path / "a" / "train.jsonl")
    task = ImageTextToText()
    assert task.recognise(frame, frozenset()) is not None
    shaped = task.standardize(frame)
    assert len(shaped) == ROWS["train"] and shaped["label"].str.len().min() >= 2
    again = build_zh_chart_qa(tmp_path / "b", rows=ROWS)  # the same charts, pixel for pixel
    assert again == summary
    assert (tmp_path / "a" / "test" / "00001.png").read_bytes() == (
        tmp_path / "b" / "test" / "00001.png"
    ).read_bytes()

"""A vision-language example: questions about bar charts drawn from generated figures.

``zh-chart-qa`` asks one question in Chinese about one small bar chart: how many bars there
are, the colour of the tallest or the shortest bar, or which bar from the left is the
tallest. Each chart draws 3 to 5 bars of distinct colours (six named colours) whose heights
are random figures at least 12% of the axis apart, on a light background with a baseline,
random bar widths and gaps, slightly varied shades and pixel noise, 64 pixels square. The
answer is only in the picture: every question type is asked of every kind of chart, and the
answers of a type are near-uniform, so a model that ignores the image scores about
1/3 (count), 1/4 (position) or 1/6 (colour). Charts are drawn from one seeded generator;
validation and test charts are new drawings (no chart is shared between splits).

Conversations are written in LLaMA-Factory/TRL's form (``images`` + ``<image>``), one JSONL
file per split, images as PNG under ``<split>/``; no font or package beyond Pillow is needed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.outputs import write_json

SIZE = 64  # pixels of a chart's side
ROWS = {"train": 3000, "validation": 200, "test": 500}
COLOURS = {
    "红色": (214, 39, 40), "绿色": (44, 160, 44), "蓝色": (31, 119, 180),
    "黄色": (230, 200, 30), "紫色": (148, 103, 189), "黑色": (30, 30, 30),
}  # fmt: skip
QUESTIONS = {
    "count": "图中有几根柱子？",
    "tallest_colour": "最高的柱子是什么颜色？",
    "shortest_colour": "最矮的柱子是什么颜色？",
    "tallest_position": "最高的是从左数第几根柱子？",
}
NUMBERS = "零一二三四五六"


def draw_chart(rng: np.random.Generator) -> tuple[Any, list[str], list[float]]:
    """One chart: the image, its bars' colour names and heights (0-1 of the axis), left to
    right."""
    from PIL import Image, ImageDraw

    count = int(rng.integers(3, 6))
    names = [str(name) for name in rng.choice(list(COLOURS), size=count, replace=False)]
    while True:  # heights far enough apart that the tallest and shortest are plain to see
        heights = rng.uniform(0.15, 0.95, count)
        if np.min(np.diff(np.sort(heights))) >= 0.12:
            break
    paper = int(rng.integers(225, 256))
    image = Image.new("RGB", (SIZE, SIZE), (paper, paper, int(rng.integers(215, 256))))
    draw = ImageDraw.Draw(image)
    left, base, top = int(rng.integers(3, 8)), SIZE - int(rng.integers(4, 9)), 4
    span = SIZE - left - int(rng.integers(3, 8))
    slot = span / count
    width = slot * rng.uniform(0.5, 0.85)
    for index, (name, height) in enumerate(zip(names, heights, strict=True)):
        x0 = left + index * slot + (slot - width) / 2
        shade = rng.uniform(0.85, 1.1)
        colour = tuple(int(min(255, c * shade)) for c in COLOURS[name])
        draw.rectangle([x0, base - height * (base - top), x0 + width, base], fill=colour)
    draw.line([(left - 2, base), (SIZE - 2, base)], fill=(90, 90, 90), width=1)
    pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, rng.uniform(2, 8), (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8)), names, list(heights)


def answer(kind: str, names: list[str], heights: list[float]) -> str:
    """The answer to question ``kind`` about bars ``names`` of ``heights``."""
    order = np.argsort(heights)
    if kind == "count":
        return f"{NUMBERS[len(names)]}根"
    if kind == "tallest_colour":
        return names[int(order[-1])]
    if kind == "shortest_colour":
        return names[int(order[0])]
    return f"第{NUMBERS[int(order[-1]) + 1]}根"


def build_zh_chart_qa(
    out: Path, seed: int = 42, rows: dict[str, int] | None = None
) -> dict[str, Any]:
    """Write ``out/<split>.jsonl`` chats (``images`` + ``<image>`` question + answer), their
    charts as ``out/<split>/<n>.png`` and ``dataset.json`` (counts, answer shares, the
    majority-answer accuracy of each question type on the test split)."""
    rows = {**ROWS, **(rows or {})}
    rng = np.random.default_rng(seed)
    kinds = list(QUESTIONS)
    answers: dict[str, list[tuple[str, str]]] = {}
    for split, count in rows.items():
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        lines, answers[split] = [], []
        for number in range(1, count + 1):
            image, names, heights = draw_chart(rng)
            image.save(folder / f"{number:05d}.png")
            kind = kinds[int(rng.integers(len(kinds)))]
            said = answer(kind, names, heights)
            answers[split].append((kind, said))
            lines.append(json.dumps({
                "images": [f"{split}/{number:05d}.png"],
                "messages": [{"role": "user", "content": f"<image>{QUESTIONS[kind]}"},
                             {"role": "assistant", "content": said}],
            }, ensure_ascii=False))  # fmt: skip
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = _card(rows, answers, seed)
    write_json(out / "dataset.json", summary)
    return summary


def _card(rows: dict[str, int], answers: dict[str, list[tuple[str, str]]], seed: int) -> dict:
    train = answers["train"]
    test = answers["test"]
    majority = {kind: Counter(a for k, a in train if k == kind).most_common(1)[0][0]
                for kind in {k for k, _ in train}}  # fmt: skip
    right = sum(majority.get(kind) == said for kind, said in test)
    return {
        "name": "zh-chart-qa",
        "source": "bar charts drawn by tunelab from random figures (Pillow), questions and "
        "answers in Chinese; no outside data",
        "seed": seed,
        "image_size": SIZE,
        "rows": rows,
        "questions": QUESTIONS,
        "question_shares": {
            split: dict(Counter(kind for kind, _ in found)) for split, found in answers.items()
        },
        "test_exact_match_of_majority_answer_per_question": round(right / max(len(test), 1), 4),
    }

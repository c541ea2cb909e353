"""Explain an image or audio classifier by occlusion: hide one part of the input at a time
and measure how far the explained label's probability falls.

An image is cut into a ``grid`` x ``grid`` of cells, each in turn painted the image's mean
colour; a clip into ``segments`` equal stretches of time, each in turn silenced. A part's
attribution is the probability with everything minus the probability with that part hidden:
positive where the part speaks for the label, negative where it speaks against it. Every
variant passes through the model's own processor and forward pass, so any checkpoint the task
trains is explained the same way, with no gradients. One explanation per file, as a dict:

- ``path`` (the file as named), ``kind`` (``image`` or ``audio``);
- ``target`` (the explained label), ``predicted``, ``probability`` (of ``target``);
- images: ``width``, ``height`` and ``cells``, ``grid`` rows of ``grid`` attributions, the
  first row the top of the image; clips: ``seconds`` and ``segments``, ``[start, end,
  attribution]`` in seconds.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from tunelab.errors import UserError

DEFAULT_GRID = 8  # 64 variants of an image
DEFAULT_SEGMENTS = 16  # 16 variants of a clip
BATCH = 32


def explain_files(
    model: Any,
    processor: Any,
    task: Any,
    frame: pd.DataFrame,
    target: str | None = None,
    parts: int | None = None,
) -> list[dict[str, Any]]:
    """Occlusion attributions for each file of ``frame`` (the task's standardized rows).

    Args:
        model, processor, task: as :func:`tunelab.api.load_trained` returns them for an image
            or audio classifier.
        frame: the files, one a row.
        target: the label to explain instead of the predicted one.
        parts: cells a side (images) or segments (clips); default 8 and 16.

    Raises:
        UserError: for an unknown ``target``, ``parts`` under 2, or a file that cannot be read
            (naming its row).
    """
    if target is not None and target not in task.labels:
        raise UserError(
            f"--target {target} is not a label of this model; its labels are "
            f"{', '.join(task.labels)}"
        )
    default = DEFAULT_GRID if task.input_kind == "image" else DEFAULT_SEGMENTS
    parts = default if parts is None else parts
    if parts < 2:
        raise UserError(f"--parts {parts} is too few; give at least 2 ({default} is the default)")
    model.eval()
    source = frame.attrs.get("source", "data")
    results = []
    for row, path in zip(frame.index, frame[task.text_column], strict=True):
        decoded = task.open_row(source, row, path, processor)
        count = parts * parts if task.input_kind == "image" else parts
        variants = [hide_parts(decoded, parts, [k]) for k in range(count)]
        layout = _layout(decoded, parts, getattr(processor, "sampling_rate", None))
        probabilities = label_probabilities(model, processor, task, [decoded, *variants])
        whole = probabilities[0]
        predicted = int(whole.argmax())
        index = task.labels.index(target) if target is not None else predicted
        drops = [float(whole[index] - p[index]) for p in probabilities[1:]]
        spans = layout.pop("spans", None)
        record = {
            "path": task.file_name(path, row),
            "kind": task.input_kind,
            "target": task.labels[index],
            "predicted": task.labels[predicted],
            "probability": float(whole[index]),
            **layout,
        }
        if spans is None:  # an image: rows of cells, the top row first
            record["cells"] = [drops[i * parts : (i + 1) * parts] for i in range(parts)]
        else:
            record["segments"] = [[a, b, d] for (a, b), d in zip(spans, drops, strict=True)]
        results.append(record)
    return results


def hide_parts(decoded: Any, parts: int, hidden: list[int]) -> Any:
    """A copy of an image (``PIL.Image``) with the cells numbered in ``hidden`` (row by row
    of a ``parts`` x ``parts`` grid) painted its mean colour, or of a clip (samples) with the
    segments numbered in ``hidden`` (of ``parts`` equal ones) silenced."""
    if isinstance(decoded, np.ndarray):
        bounds = _segment_bounds(len(decoded), parts)
        silenced = decoded.copy()
        for k in hidden:
            silenced[bounds[k] : bounds[k + 1]] = 0.0
        return silenced
    from PIL import ImageDraw, ImageStat

    width, height = decoded.size
    mean = tuple(round(v) for v in ImageStat.Stat(decoded).mean[:3])
    painted = decoded.copy()
    draw = ImageDraw.Draw(painted)
    for k in hidden:
        i, j = divmod(k, parts)
        left, top = j * width // parts, i * height // parts
        right, bottom = (j + 1) * width // parts - 1, (i + 1) * height // parts - 1
        draw.rectangle((left, top, right, bottom), fill=mean)
    return painted


def _segment_bounds(samples: int, parts: int) -> list[int]:
    """Where ``parts`` equal segments of a clip of ``samples`` start, and the clip's end."""
    return np.linspace(0, samples, parts + 1).round().astype(int).tolist()


def _layout(decoded: Any, parts: int, rate: int | None) -> dict[str, Any]:
    """An image's size and grid, or a clip's length and its segments' spans in seconds."""
    if not isinstance(decoded, np.ndarray):
        return {"width": decoded.size[0], "height": decoded.size[1], "grid": parts}
    assert rate is not None  # an audio extractor has its rate
    bounds = _segment_bounds(len(decoded), parts)
    spans = [(round(a / rate, 3), round(b / rate, 3)) for a, b in pairwise(bounds)]
    return {"seconds": round(len(decoded) / rate, 3), "spans": spans}


def label_probabilities(model: Any, processor: Any, task: Any, decoded: list[Any]) -> np.ndarray:
    """Softmax of the model's logits for decoded inputs, in batches (fp32: the differences
    explained are small)."""
    import torch

    rows = []
    for start in range(0, len(decoded), BATCH):
        inputs = task.features(processor, decoded[start : start + BATCH])
        with torch.inference_mode():
            logits = model(**{k: v.to(model.device) for k, v in inputs.items()}).logits
        rows.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(rows)


def top_parts(explanation: dict[str, Any], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` parts whose hiding lowered the probability most (by 0.001 or more), named
    for a line of text: ``row 2 col 5`` of an image, ``0.32-0.36 s`` of a clip."""
    if "cells" in explanation:
        cells = explanation["cells"]
        named = [(f"row {i + 1} col {j + 1}", value)
                 for i, row in enumerate(cells) for j, value in enumerate(row)]  # fmt: skip
    else:
        named = [(f"{start:.2f}-{end:.2f} s", value)
                 for start, end, value in explanation["segments"]]  # fmt: skip
    ranked = sorted(named, key=lambda item: -item[1])
    return [(where, value) for where, value in ranked[:k] if round(value, 3) > 0]

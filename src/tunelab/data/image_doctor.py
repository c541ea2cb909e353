"""The data doctor for images: unreadable files, exact and near duplicates, leakage between
splits, sizes and their outliers, class balance.

Each image is decoded once (:func:`tunelab.data.images.image_facts`); near duplicates are
pairs whose perceptual hashes are within :data:`NEAR_DUPLICATE_BITS` bits and whose small
thumbnails agree, found without comparing every pair
(:func:`tunelab.data.image_hashes.near_duplicate_pairs`). ``diagnose_images`` returns a
JSON-able report; ``image_doctor_lines`` says what it found in one line per finding.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.doctor import class_balance
from tunelab.data.image_hashes import (
    CHECK_SIDE,
    HASH_SIDE,
    MIN_SIMILARITY,
    NEAR_DUPLICATE_BITS,
    near_duplicate_pairs,
)
from tunelab.data.images import ImageBombError, ImageFacts, bomb_error, image_facts, image_name
from tunelab.errors import UserError

ASPECT_FACTOR = 2.0  # an image twice as wide (or tall) for its height as the median is odd
LARGE_FACTOR = 16  # an image with 16x the median's pixels is odd, and slow to decode
SHOWN = 5  # examples kept per finding
PREFIX = "data doctor: "
READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError)  # Pillow's, for damaged files


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": float(np.median(values)), "max": max(values)}


def _read(
    frame: pd.DataFrame, path_column: str, strict: bool
) -> tuple[dict, dict[Any, ImageFacts]]:
    """Decode every image of one split; what could not be read, and the facts of the rest."""
    source = str(frame.attrs.get("source", "data"))
    shown = frame.attrs.get("columns", {}).get(path_column, path_column)
    empty: list[int] = []
    unreadable: list[dict[str, Any]] = []
    facts: dict[Any, ImageFacts] = {}
    for row, path in frame[path_column].items():
        if path is None:
            if strict:
                raise UserError(
                    f"{source} row {row}: column '{shown}' is empty; give the image's path or "
                    "remove the row, or run without --strict (data.drop_invalid=true) to drop "
                    "such rows with a warning"
                )
            empty.append(int(row))
            continue
        try:
            facts[row] = image_facts(path)
        except ImageBombError as error:
            raise bomb_error(source, row, path, error) from None
        except READ_ERRORS as error:
            why = str(error).split("\n")[0] or type(error).__name__
            if strict:
                raise UserError(
                    f"{source} row {row}: image {image_name(path, row)} cannot be read ({why}); "
                    "replace or "
                    "remove it, or run without --strict (data.drop_invalid=true) to leave "
                    "unreadable images out with a warning"
                ) from None
            unreadable.append({"row": int(row), "path": image_name(path, row), "problem": why})
    return {"empty_paths": empty, "unreadable": unreadable}, facts


def _sizes(frame: pd.DataFrame, path_column: str, facts: dict[Any, ImageFacts], side: int) -> dict:
    """Width, height and aspect ratio (min/median/max) and the images far from the rest."""
    rows = list(facts)
    widths = np.array([facts[r].width for r in rows], dtype=np.float64)
    heights = np.array([facts[r].height for r in rows], dtype=np.float64)
    aspects, pixels = widths / heights, widths * heights
    median_aspect, median_pixels = float(np.median(aspects)), float(np.median(pixels))
    odd = {
        "aspect": np.abs(np.log(aspects / median_aspect)) > math.log(ASPECT_FACTOR),
        "small": np.minimum(widths, heights) < side,
        "large": pixels > LARGE_FACTOR * median_pixels,
    }
    outliers = {}
    for kind, flags in odd.items():
        found = [rows[i] for i in np.flatnonzero(flags)]
        outliers[kind] = {
            "count": len(found),
            "examples": [
                {"row": int(r), "path": image_name(frame[path_column][r], r),
                 "size": [facts[r].width, facts[r].height]}
                for r in found[:SHOWN]
            ],
        }  # fmt: skip
    return {
        "sizes": {
            "width": _stats(widths.astype(int).tolist()),
            "height": _stats(heights.astype(int).tolist()),
            "aspect": {k: round(v, 3) for k, v in _stats(aspects.tolist()).items()},
        },
        "outliers": outliers,
        "input_side": side,
    }


def _exact_duplicates(frame: pd.DataFrame, path_column: str, facts: dict[Any, ImageFacts]) -> dict:
    digests = pd.Series({r: f.sha1 for r, f in facts.items()}, dtype=object)
    repeated = digests[digests.duplicated(keep=False)]
    groups = [list(g.index) for _, g in repeated.groupby(repeated, sort=False)]
    return {
        "duplicates": int(digests.duplicated().sum()),
        "duplicate_examples": [
            [image_name(frame[path_column][r], r) for r in group[:4]] for group in groups[:SHOWN]
        ],
    }


class _Similar:
    """Every readable image of every split, and the near-duplicate pairs among them."""

    def __init__(self, facts: dict[str, dict[Any, ImageFacts]]) -> None:
        self.rows = {split: list(found) for split, found in facts.items()}
        every = [f for found in facts.values() for f in found.values()]
        bounds = np.cumsum([0] + [len(found) for found in facts.values()])
        spans = zip(facts, bounds[:-1], bounds[1:], strict=True)
        self.positions = {split: np.arange(start, end) for split, start, end in spans}
        self.split_of = np.repeat(np.arange(len(facts)), np.diff(bounds))
        self.index = {split: i for i, split in enumerate(facts)}
        hashes = np.array([f.phash for f in every], dtype=np.uint64)
        thumbnails = np.array([f.thumbnail for f in every], dtype=np.uint8).reshape(
            len(every), CHECK_SIDE, CHECK_SIDE
        )
        self.pairs = near_duplicate_pairs(hashes, thumbnails)

    def groups(self, split: str) -> np.ndarray:
        """A near-duplicate group id for each image of ``split`` (links inside the split)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        first, second, n = self.pairs.first, self.pairs.second, len(self.split_of)
        inside = (self.split_of[first] == self.index[split]) & (
            self.split_of[second] == self.index[split]
        )
        graph = coo_matrix((np.ones(int(inside.sum())), (first[inside], second[inside])), (n, n))
        _, component = connected_components(graph, directed=False)
        return component[self.positions[split]]

    def near_seen(self, held: str, seen: str) -> tuple[np.ndarray, np.ndarray]:
        """For each image of ``held``: the position of an image of ``seen`` that is its near
        duplicate, or -1; and the bits between their hashes."""
        partner = np.full(len(self.split_of), -1)
        bits = np.zeros(len(self.split_of), dtype=np.int64)
        first, second = self.pairs.first, self.pairs.second
        for a, b in ((first, second), (second, first)):
            link = (self.split_of[a] == self.index[held]) & (self.split_of[b] == self.index[seen])
            partner[a[link]], bits[a[link]] = b[link], self.pairs.bits[link]
        return partner[self.positions[held]], bits[self.positions[held]]


def _near_duplicates(
    frame: pd.DataFrame, path_column: str, rows: list[Any], group: np.ndarray
) -> dict[str, Any]:
    """Images with a near-identical earlier image in the same split (the first of each group
    is not counted), and the largest groups."""
    groups = pd.Series(group, index=rows)
    sizes = groups.value_counts()
    repeated = sizes[sizes > 1]
    examples = []
    for key in repeated.index[:SHOWN]:
        members = list(groups.index[groups == key][:4])
        paths = [image_name(frame[path_column][r], r) for r in members]
        examples.append({"rows": [int(r) for r in members], "paths": paths})
    return {
        "count": int(groups.duplicated().sum()),
        "groups": len(repeated),
        "examples": examples,
    }


def diagnose_images(
    frames: dict[str, pd.DataFrame],
    path_column: str,
    label_column: str | None,
    input_side: int,
    strict: bool = False,
) -> dict[str, Any]:
    """Examine each split of images and the splits against each other.

    Args:
        frames: ``{"train": ..., "validation": ..., "test": ...}`` with absolute image paths in
            ``path_column`` (``None`` for an empty cell) and labels in ``label_column``.
        input_side: the model's input side in pixels: smaller images are flagged.
        strict: stop at the first empty path or unreadable image instead of reporting it.

    Returns:
        The report: per split under ``images`` (unreadable files, duplicates, near
        duplicates, sizes, outliers, classes), then ``leakage`` between splits.

    Raises:
        UserError: for an image above the decompression-bomb limit; with ``strict``, for the
            first empty path or unreadable image, naming its row and path.
    """
    started = time.perf_counter()
    report: dict[str, Any] = {"images": {}, "leakage": {}}
    facts: dict[str, dict[Any, ImageFacts]] = {}
    for split, frame in frames.items():
        problems, facts[split] = _read(frame, path_column, strict)
        section: dict[str, Any] = {
            "file": str(frame.attrs.get("source", split)),
            "rows": len(frame),
            "images_read": len(facts[split]),
            **problems,
        }
        if facts[split]:
            section.update(_exact_duplicates(frame, path_column, facts[split]))
            section.update(_sizes(frame, path_column, facts[split], input_side))
        if label_column and label_column in frame.columns:
            labels = frame.loc[list(facts[split]), label_column].dropna()
            section["class_balance"] = class_balance(labels)
        report["images"][split] = section
    similar = _Similar(facts)
    for split, frame in frames.items():
        if facts[split]:
            group = similar.groups(split)
            near = _near_duplicates(frame, path_column, similar.rows[split], group)
            report["images"][split]["near_duplicates"] = near
    names = list(frames)
    for i, held in enumerate(names):
        for seen in names[:i]:
            report["leakage"][f"{held}_in_{seen}"] = _leakage(
                frames, path_column, facts, similar, held, seen
            )
    report["near_duplicate_bits"] = NEAR_DUPLICATE_BITS
    report["near_duplicate_similarity"] = MIN_SIMILARITY
    report["hash"] = f"pHash, {HASH_SIDE * HASH_SIDE} bits"
    report["near_duplicate_search"] = {
        "compared_hash_pairs": similar.pairs.compared,
        "checked_image_pairs": similar.pairs.checked,
        "complete": similar.pairs.complete,
    }
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def _leakage(
    frames: dict[str, pd.DataFrame],
    path_column: str,
    facts: dict[str, dict[Any, ImageFacts]],
    similar: _Similar,
    held: str,
    seen: str,
) -> dict[str, Any]:
    """Images of ``held`` that are also (exact) or nearly (near) images of ``seen``."""
    seen_digests = {f.sha1 for f in facts[seen].values()}
    exact = sum(f.sha1 in seen_digests for f in facts[held].values())
    partner, bits = similar.near_seen(held, seen)
    rows, seen_rows = similar.rows[held], similar.rows[seen]
    start = int(similar.positions[seen][0]) if len(seen_rows) else 0
    leaked = np.flatnonzero(partner >= 0)
    return {
        "exact": int(exact),
        "near": len(leaked),
        f"share_of_{held}": round(len(leaked) / len(rows), 4) if rows else 0.0,
        "examples": [
            {"row": int(rows[i]), "path": image_name(frames[held][path_column][rows[i]], rows[i]),
             "seen": image_name(frames[seen][path_column][seen_rows[int(partner[i]) - start]],
                                seen_rows[int(partner[i]) - start]),
             "bits": int(bits[i])}
            for i in leaked[:SHOWN]
        ],
    }  # fmt: skip


def _short(path: str, source: str) -> str:
    """``path`` relative to the split's folder (or its data file's folder) when inside it."""
    base = Path(source) if Path(source).is_dir() else Path(source).parent
    try:
        return str(Path(path).relative_to(base.resolve()))
    except ValueError:
        return path


def _size(size: list[int]) -> str:
    return f"{size[0]}x{size[1]}"


def image_doctor_lines(report: dict[str, Any]) -> list[str]:
    """One readable line per finding of :func:`diagnose_images` (``tunelab train`` prints
    them; ``tunelab doctor`` prints them without the ``data doctor:`` prefix)."""
    lines = []
    for split, s in report.get("images", {}).items():
        say = f"{PREFIX}{split}: "
        source = s.get("file", "")
        balance = s.get("class_balance")
        count = f"{s.get('images_read', s['rows'])} images"
        if s.get("image_uses", 0) > s.get("images_read", s["rows"]):  # reused by chats
            count += f" ({s['image_uses']} uses in {s['rows']} conversations)"
        if balance and balance["classes"]:
            low, high = min(balance["counts"].values()), max(balance["counts"].values())
            count += (f", {balance['classes']} classes ({low} to {high} images each, imbalance "
                      f"{balance['imbalance_ratio']}:1)")  # fmt: skip
            if balance["too_small_to_learn"] and split == "train":
                count += f"; too few to learn: {', '.join(balance['too_small_to_learn'][:8])}"
        lines.append(say + count)
        if s.get("empty_paths"):
            rows = ", ".join(map(str, s["empty_paths"][:SHOWN]))
            lines.append(
                say + f"{len(s['empty_paths'])} row(s) without an image path (rows {rows})"
            )
        if s.get("unreadable"):
            first = s["unreadable"][0]
            lines.append(
                say + f"{len(s['unreadable'])} unreadable image(s), e.g. row {first['row']} "
                f"{first['path']} ({first['problem']})"
            )
        if "sizes" in s:
            w, h, a = s["sizes"]["width"], s["sizes"]["height"], s["sizes"]["aspect"]
            lines.append(
                say + f"sizes: width {w['min']} to {w['max']}, height {h['min']} to {h['max']} "
                f"(median {w['median']:g}x{h['median']:g}), aspect ratio (width/height) "
                f"{a['min']:.2f} to {a['max']:.2f}"
            )
            lines.extend(say + line for line in _outlier_lines(s, source))
        if s.get("duplicates"):
            example = " = ".join(_short(p, source) for p in s["duplicate_examples"][0][:2])
            lines.append(say + f"{s['duplicates']} exact duplicate image(s), e.g. {example}")
        near = s.get("near_duplicates", {})
        if near.get("count"):
            example = " ~ ".join(_short(p, source) for p in near["examples"][0]["paths"][:2])
            lines.append(
                say + f"{near['count']} near-duplicate image(s) in {near['groups']} group(s) "
                f"(perceptual hash and thumbnail alike), e.g. {example}"
            )
    sources = {split: s.get("file", "") for split, s in report.get("images", {}).items()}
    for pair, leak in report.get("leakage", {}).items():
        if leak["near"]:
            held, seen = pair.split("_in_")
            first = leak["examples"][0]
            example = (f"{_short(first['path'], sources.get(held, ''))} ~ "
                       f"{_short(first['seen'], sources.get(seen, ''))}")  # fmt: skip
            lines.append(
                f"{PREFIX}{leak['near']} {held} image(s) are also (or nearly) {seen} images "
                f"({leak['exact']} exact), e.g. {example} (leakage: {held} scores will be too "
                "high)"
            )
    if not report.get("near_duplicate_search", {}).get("complete", True):
        lines.append(f"{PREFIX}near-duplicate search stopped early: too many near-identical images")
    return lines


# why an odd aspect ratio matters to a model that resizes images to a square (a reader that
# letterboxes its lines says otherwise)
SQUASHED = "(squashed when resized to a square)"


def _outlier_lines(section: dict[str, Any], source: str) -> list[str]:
    outliers, aspect = section["outliers"], section["sizes"]["aspect"]["median"]
    what = {
        "aspect": f"with an aspect ratio over {ASPECT_FACTOR:g}x from the median {aspect:.2f} "
        + SQUASHED,
        "small": f"smaller than the model's {section['input_side']}-pixel input side (upscaled, "
        "blurred)",
        "large": f"with over {LARGE_FACTOR}x the median's pixels (slow to decode every epoch; "
        "downscale them)",
    }
    lines = []
    for kind, text in what.items():
        found = outliers[kind]
        if found["count"]:
            first = found["examples"][0]
            lines.append(
                f"{found['count']} image(s) {text}, e.g. row {first['row']} "
                f"{_short(first['path'], source)} ({_size(first['size'])})"
            )
    return lines


def format_image_report(report: dict[str, Any]) -> str:
    """The terminal report of ``tunelab doctor`` for images."""
    lines = [line.removeprefix(PREFIX) for line in image_doctor_lines(report)]
    lines.append(f"(doctor took {report['seconds']:.1f} s)")
    return "\n".join(lines)

"""The image doctor: how many planted copies it finds, how many pairs of different pictures it
calls near duplicates, and how long it takes on many images.

Data, generated (no files needed): ``--images`` distinct 64x64 pictures of random rectangles and
ellipses (PNG) in two class folders, split 90/10 into train and test, plus ``--copies`` copies of
training pictures, each changed one way (JPEG quality 70, resized to 3/4, brightness +15%,
contrast -20%, a 3% crop resized back, grey), half put in train (near duplicates) and half in
test (leakage). And scikit-learn's 1,797 digit scans (8x8, shown at 32x32, 43 writers), split
at random 80/10/10: the same writer's scans of a digit can be near identical, which is why
the original data set keeps writers apart between train and test; a pair of two different
digits would be a false alarm.

Usage::

    python benchmarks/image_doctor.py [--images 50000] [--copies 600]

Writes ``benchmarks/results/image_doctor.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from tunelab.data.image_doctor import diagnose_images
from tunelab.data.load import read_table
from tunelab.tasks.image_classification import ImageClassification

HERE = Path(__file__).resolve().parent


def shapes(seed: int, side: int = 64) -> Image.Image:
    """A picture of a few random rectangles and ellipses on a random background."""
    rng = np.random.default_rng(seed)

    def colour() -> tuple[int, ...]:
        return tuple(int(v) for v in rng.integers(0, 255, 3))

    image = Image.new("RGB", (side, side), colour())
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = (int(v) for v in rng.integers(0, side * 3 // 4, 2))
        w, h = (int(v) for v in rng.integers(side // 8, side // 2, 2))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], colour())
    return image


def _jpeg(image: Image.Image) -> Image.Image:
    encoded = io.BytesIO()
    image.save(encoded, "JPEG", quality=70)
    return Image.open(io.BytesIO(encoded.getvalue()))


CHANGES = {
    "jpeg70": _jpeg,
    "resized": lambda im: im.resize((im.width * 3 // 4, im.height * 3 // 4)),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.15),
    "less contrast": lambda im: ImageEnhance.Contrast(im).enhance(0.8),
    "cropped 3%": lambda im: im.crop((2, 2, im.width, im.height)).resize(im.size),
    "grey": lambda im: im.convert("L"),
}


def _write_shapes(root: Path, images: int, copies: int) -> dict[str, str]:
    """The pictures and their copies; returns each copy's path -> the change made."""
    made = {}
    for n in range(images):
        split = "test" if n % 10 == 9 else "train"
        folder = root / split / ("a" if n % 4 < 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        shapes(n).save(folder / f"{n}.png")
    names = list(CHANGES)
    for k in range(copies):
        original = 10 * k  # a training picture (n % 10 == 0)
        change = names[k % len(names)]
        split = "train" if k % 2 else "test"
        folder = root / split / ("a" if original % 4 < 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        copy = CHANGES[change](shapes(original))
        path = folder / f"{original}-copy.{'jpg' if change == 'jpeg70' else 'png'}"
        copy.save(path)
        made[str(path.resolve())] = change
    return made


def _found_copies(report: dict, copies: dict[str, str]) -> dict[str, list[int]]:
    """Per change: [found, planted] (a copy in train found in a near-duplicate group, or a
    copy in test found as leakage)."""
    flagged: set[str] = set()
    for example in report["images"]["train"]["near_duplicates"]["examples"]:
        flagged.update(example["paths"])
    flagged.update(e["path"] for e in report["leakage"]["test_in_train"]["examples"])
    counts = {change: [0, 0] for change in CHANGES}
    for path, change in copies.items():
        counts[change][1] += 1
        counts[change][0] += path in flagged
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--copies", type=int, default=600)
    args = parser.parse_args()
    import tunelab.data.image_doctor as doctor

    doctor.SHOWN = 10 * args.copies  # keep every example, to tell which copies were found
    task = ImageClassification()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shapes"
        copies = _write_shapes(root, args.images, args.copies)
        frames = {s: task.standardize(read_table(root / s)) for s in ("train", "test")}
        started = time.perf_counter()
        report = diagnose_images(frames, "path", "label", 32)
        seconds = time.perf_counter() - started
        digits = _digits_report(Path(tmp) / "digits")
    found = _found_copies(report, copies)
    train_near = report["images"]["train"]["near_duplicates"]["count"]
    leaked = report["leakage"]["test_in_train"]["near"]
    result = {
        "images": sum(len(f) for f in frames.values()),
        "copies_planted": len(copies),
        "found_by_change": found,
        "recall": round(sum(f for f, _ in found.values()) / len(copies), 4),
        # everything flagged beyond the planted copies: false alarms among distinct pictures
        "flagged_beyond_copies": train_near + leaked - sum(f for f, _ in found.values()),
        "doctor_seconds": round(seconds, 1),
        "search": report["near_duplicate_search"],
        "digits": digits,
    }
    out = HERE / "results" / "image_doctor.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{result['images']} images, {len(copies)} planted copies; doctor {seconds:.0f} s\n")
    print("| change | found | planted |\n|---|---|---|")
    for change, (hit, planted) in found.items():
        print(f"| {change} | {hit} | {planted} |")
    print(f"\nflagged beyond the copies: {result['flagged_beyond_copies']}")
    print(f"digits: {digits}")
    print(f"written to {out}")


def _digits_report(root: Path) -> dict:
    """The doctor on scikit-learn's digits as one folder: every pair it finds is a false
    alarm (different scans, if alike)."""
    from tunelab.data.examples import build_digits

    build_digits(root)
    task = ImageClassification()
    frames = {s: task.standardize(read_table(root / s)) for s in ("train", "validation", "test")}
    report = diagnose_images(frames, "path", "label", 32)
    within = sum(s["near_duplicates"]["count"] for s in report["images"].values())
    across = sum(leak["near"] for leak in report["leakage"].values())
    digit = lambda path: Path(path).parent.name  # noqa: E731
    groups = [e["paths"] for s in report["images"].values()
              for e in s["near_duplicates"]["examples"]]  # fmt: skip
    groups += [[e["path"], e["seen"]] for leak in report["leakage"].values()
               for e in leak["examples"]]  # fmt: skip
    return {
        "images": 1797,
        "near_duplicates_within_splits": within,
        "held_out_near_a_training_scan": across,
        "pairs_or_groups_of_two_digits": sum(len({digit(p) for p in g}) > 1 for g in groups),
    }


if __name__ == "__main__":
    main()

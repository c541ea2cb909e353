"""Tesseract on the zh-ocr-lines test images: the classic OCR engine as the baseline a trained
reader must beat.

Tesseract 5 (Debian's ``tesseract-ocr`` with ``tesseract-ocr-chi-sim``, LSTM engine), one
call per image with ``-l chi_sim --psm 7`` (the image is a single line of text); the spaces it
puts between Chinese characters are removed, as the references have none. Scored with the
same :func:`tunelab.evaluation.reading.reading_metrics` as ``tunelab evaluate`` (CER, exact
match, chrF), on the same 500 test lines.

Usage::

    apt-get install -y tesseract-ocr tesseract-ocr-chi-sim
    tunelab data example zh-ocr-lines --out data/zh-ocr-lines
    python benchmarks/ocr_tesseract.py [--data data/zh-ocr-lines] [--run runs/zh-ocr-lines]

With ``--run``, the trained reader's figures on the same test set (its ``metrics.json``) are
put beside Tesseract's. Writes ``benchmarks/results/ocr_tesseract.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from tunelab.evaluation.reading import reading_metrics

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ocr_tesseract.json"


def tesseract_version() -> str:
    done = subprocess.run(["tesseract", "--version"], capture_output=True, text=True, check=True)
    return (done.stdout or done.stderr).splitlines()[0]


def read_line(image: Path, language: str) -> str:
    """Tesseract's reading of one line image, spaces between characters removed."""
    done = subprocess.run(
        ["tesseract", str(image), "stdout", "-l", language, "--psm", "7"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return re.sub(r"\s+", "", done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/zh-ocr-lines"))
    parser.add_argument("--run", type=Path, default=None, help="a trained reader's run folder")
    parser.add_argument("--language", default="chi_sim")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("tesseract") is None:
        raise SystemExit("tesseract is not installed: apt-get install -y tesseract-ocr "
                         "tesseract-ocr-chi-sim")  # fmt: skip
    test = pd.read_csv(args.data / "test.csv")
    images = [args.data / path for path in test["image"]]
    started = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:  # one tesseract process per worker
        readings = list(pool.map(lambda image: read_line(image, args.language), images))
    seconds = time.perf_counter() - started
    references = test["text"].astype(str).tolist()
    result = {
        "data": str(args.data),
        "test_lines": len(test),
        "tesseract": {
            "version": tesseract_version(),
            "command": f"tesseract IMAGE stdout -l {args.language} --psm 7",
            "workers": args.workers,
            "seconds": round(seconds, 1),
            "lines_per_second": round(len(test) / seconds, 1),
            **{key: round(value, 4) if isinstance(value, float) else value
               for key, value in reading_metrics(readings, references).items()},
        },
        "examples": [{"text": text, "tesseract": read}
                     for text, read in zip(references[:10], readings[:10], strict=True)],
    }  # fmt: skip
    if args.run is not None:
        metrics = json.loads((args.run / "metrics.json").read_text())
        result["tunelab"] = {"run": str(args.run), **metrics.get("test", metrics)}
    from results_file import write_results

    write_results(RESULTS, result)
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()

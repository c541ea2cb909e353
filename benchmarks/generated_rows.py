"""How much a seeded sample of test rows moves a generation run's corpus scores.

``generation.max_eval_rows: auto`` scores a seeded sample of the test rows when a CPU would
take long to generate for all of them (:mod:`tunelab.training.generated_rows`). This measures
what that costs in precision, on en-zh-l10n's whole test split (4,251 pairs): the corpus chrF
and BLEU of every row against those of 200 seeded samples of 200, 619 (SmolLM2-135M's
default), 1,000 and 2,000 rows, for

- the translation memory of ``benchmarks/generation_quality.py`` (chrF about 17, no model);
- each ``--run`` folder's ``predictions.jsonl`` where it holds every test row (a run with
  ``--set generation.max_eval_rows=null``), with its generation seconds a row.

Usage::

    python benchmarks/generated_rows.py [--run runs/l10n-starter ...]

Writes ``benchmarks/results/generated_rows.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generation_quality import load, translation_memory  # noqa: E402

SIZES = (200, 619, 1000, 2000)
DRAWS = 200


def spread(outputs: list[str], references: list[str]) -> dict[str, object]:
    """Corpus chrF and BLEU of every row, and their spread over seeded samples of each size."""
    import sacrebleu

    from tunelab.evaluation.generation import is_unspaced

    tokenize = "zh" if is_unspaced(references) else "13a"  # as tunelab's own scores

    def scores(rows: np.ndarray) -> tuple[float, float]:
        said, meant = [outputs[i] for i in rows], [[references[i] for i in rows]]
        return (sacrebleu.corpus_chrf(said, meant).score,
                sacrebleu.corpus_bleu(said, meant, tokenize=tokenize).score)  # fmt: skip

    everything = np.arange(len(outputs))
    chrf, bleu = scores(everything)
    result: dict[str, object] = {"rows": len(outputs), "chrf": round(chrf, 2),
                                 "bleu": round(bleu, 2), "samples": {}}  # fmt: skip
    rng = np.random.default_rng(0)
    for size in (s for s in SIZES if s < len(outputs)):
        drawn = np.array([scores(rng.choice(everything, size, replace=False))
                          for _ in range(DRAWS)])  # fmt: skip
        result["samples"][str(size)] = {  # type: ignore[index]
            "chrf_sd": round(float(drawn[:, 0].std()), 2),
            "chrf_5_95": [round(float(q), 2) for q in np.percentile(drawn[:, 0], [5, 95])],
            "bleu_sd": round(float(drawn[:, 1].std()), 2),
        }
    return result


def run_outputs(folder: Path) -> tuple[list[str], list[str], dict[str, object]]:
    """A run's generated answers and references, with its model and generation time."""
    records = [json.loads(line) for line in (folder / "predictions.jsonl").open()]
    metrics = json.loads((folder / "metrics.json").read_text())
    seconds = (metrics.get("stage_seconds") or {}).get("predictions")
    about = {
        "model": json.loads((folder / "data_report.json").read_text())
        .get("model_choice", {})
        .get("name", "(named)"),
        "prediction_seconds_a_row": round(seconds / len(records), 3) if seconds else None,
    }
    return [r["output"] for r in records], [r["reference"] for r in records], about


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--run", type=Path, action="append", default=[],
        help="a run folder on en-zh-l10n that generated for every test row",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE / "results" / "generated_rows.json")
    args = parser.parse_args()
    train, test = load("en-zh-l10n", 10**9, 10**9)
    memory = translation_memory(train, test)
    results = {"translation memory": spread(memory, test["target"].tolist())}
    for folder in args.run:
        outputs, references, about = run_outputs(folder)
        results[folder.name] = {**about, **spread(outputs, references)}
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    systems = {**previous.get("systems", {}), **results}
    found = {**previous, "what": __doc__.split("\n")[0], "draws": DRAWS, "systems": systems}
    args.out.write_text(json.dumps(found, indent=1) + "\n")
    print("| system | rows | chrF (all) | " + " | ".join(f"sd at {s}" for s in SIZES) + " |")
    print("|---|---|---|" + "---|" * len(SIZES))
    for name, found in results.items():
        sds = [found["samples"].get(str(s), {}).get("chrf_sd", "—") for s in SIZES]  # type: ignore[union-attr]
        print(f"| {name} | {found['rows']} | {found['chrf']} | " + " | ".join(map(str, sds)) + " |")


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()

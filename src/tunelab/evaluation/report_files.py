"""Report sections shared by the tasks that classify files (images, audio): the
classification sections text has, and the worst errors, each shown by its file's content
embedded in the page (a thumbnail, a player), so the report works offline and after the
files move."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunelab.evaluation.report_classification import WORST_SHOWN, single_label_parts
from tunelab.evaluation.report_page import Html, Plots, TaskReport, esc, note, number, section


def file_sections(run: Any, plots: Plots, shown: Callable[[str], str], column: str) -> TaskReport:
    """Classes (confusion matrix, per-class scores, calibration) and the worst errors.

    Args:
        run: the run folder (:class:`~tunelab.evaluation.report.RunFolder`).
        plots: the report's plots.
        shown: the HTML that shows a file's content, from its path.
        column: the heading of that column ("image", "clip").
    """
    split, scores = run.scores()
    records = [r for r in run.predictions or [] if "gold" in r]
    parts = single_label_parts(scores, records, split, plots)
    if not records:
        parts.append(note("No predictions.jsonl with gold labels (no test split)."))
    body = [section("classes", f"Classes ({split or 'no held-out split'})", parts)]
    if records:
        body.append(section("errors", "Worst errors", worst_errors(records, shown, column)))
    paths = [str(r["path"]) for r in _wrong_by_confidence(records)
             if Path(str(r.get("path", ""))).is_file()]  # fmt: skip
    return TaskReport(body, paths, explainable=bool(records), explained_files=True)


def _wrong_by_confidence(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The wrong predictions, the most confident first."""
    wrong = [r for r in records if r.get("label") != r.get("gold")]
    return sorted(wrong, key=lambda r: -float(r.get("score", 0.0)))


def worst_errors(
    records: list[dict[str, Any]], shown: Callable[[str], str], column: str
) -> list[str]:
    """The most confident wrong predictions, each with its file shown by ``shown``."""
    wrong = _wrong_by_confidence(records)
    if not wrong:
        return [note("Every test prediction is correct.")]
    rows = []
    for record in wrong[:WORST_SHOWN]:
        path = str(record.get("path", ""))
        p_gold = (record.get("probabilities") or {}).get(str(record.get("gold")), 0.0)
        cells = [
            shown(path),
            esc(Path(path).name),
            esc(record.get("gold", "")),
            esc(record.get("label", "")),
            number(float(record.get("score", 0.0))),
            number(float(p_gold)),
        ]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    header = "".join(
        f"<th>{name}</th>"
        for name in (column, "file", "true", "predicted", "confidence", "p(true)")
    )
    intro = (
        f"<p>The {min(len(wrong), WORST_SHOWN)} most confident of {len(wrong):,} wrong "
        f"predictions ({len(wrong) / len(records):.1%} of the test rows).</p>"
    )
    return [Html(intro + f"<table><tr>{header}</tr>{''.join(rows)}</table>")]

"""Report sections of generation (seq2seq and causal LM): reference vs. output samples,
their lengths, and the rows with the lowest per-row score (sentence chrF)."""

from __future__ import annotations

from typing import Any

from tunelab.evaluation.plots import histograms_figure
from tunelab.evaluation.report_page import Html, Plots, TaskReport, note, section, shorten, table

SAMPLES_SHOWN, WORST_SHOWN = 10, 10


def row_scores(outputs: list[str], references: list[str]) -> list[float]:
    """Sentence-level chrF (0-100) of each output against its reference (sacreBLEU).

    chrF compares character n-grams, so it scores Chinese and spaced text alike and gives
    partial credit where ROUGE or BLEU on one short sentence is mostly 0.
    """
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    return [chrf.sentence_score(o, [r]).score for o, r in zip(outputs, references, strict=True)]


def sections(run: Any, plots: Plots) -> Any:
    """The generation sections of ``run`` (a report ``RunFolder``)."""
    records = [r for r in run.predictions or [] if "reference" in r and "output" in r]
    if not records:
        return TaskReport(
            [
                section(
                    "samples",
                    "Samples",
                    [
                        note(
                            "No predictions.jsonl with references (no test split): samples and "
                            "lengths need the test set's outputs."
                        )
                    ],
                )
            ]
        )
    outputs = [str(r["output"]) for r in records]
    references = [str(r["reference"]) for r in records]
    scores = row_scores(outputs, references)
    samples = [
        Html(
            f"<p>The first {min(len(records), SAMPLES_SHOWN)} of {len(records):,} generated test "
            "rows; chrF is the row's own score against its reference (0-100).</p>"
        ),
        _rows_table(records[:SAMPLES_SHOWN], scores[:SAMPLES_SHOWN]),
    ]
    ranked = sorted(range(len(records)), key=lambda i: scores[i])[:WORST_SHOWN]
    worst = [
        Html(f"<p>The {len(ranked)} rows with the lowest chrF.</p>"),
        _rows_table([records[i] for i in ranked], [scores[i] for i in ranked]),
    ]
    return TaskReport(
        [
            section("samples", "Samples: reference vs. output", samples),
            section("lengths", "Lengths and scores", _plots(outputs, references, scores, plots)),
            section("errors", "Worst outputs", worst),
        ]
    )


def _rows_table(records: list[dict[str, Any]], scores: list[float]) -> Html:
    """Source, reference and output side by side; preference runs add the rejected answer
    (their reference is the chosen one)."""
    pairs = any("rejected" in r for r in records)
    rows = [
        [shorten(str(r.get("source", "")), 300), str(r["reference"]),
         *([str(r.get("rejected", ""))] if pairs else []), str(r["output"]), s]
        for r, s in zip(records, scores, strict=True)
    ]  # fmt: skip
    header = ["source", "chosen", "rejected"] if pairs else ["source", "reference"]
    return table([*header, "output", "chrF"], rows, "texts")


def _plots(outputs: list[str], references: list[str], scores: list[float], plots: Plots) -> list:
    lengths = histograms_figure(
        {"references": [len(r) for r in references], "outputs": [len(o) for o in outputs]},
        "characters",
        "Length of outputs and references",
    )
    empty = sum(not o.strip() for o in outputs)
    parts = [
        plots.figure(
            "length-histogram",
            lengths,
            "Characters per generated output and per reference on the test rows.",
        ),
        plots.figure(
            "row-score-histogram",
            histograms_figure({"chrF per row": scores}, "chrF (0-100)", "Per-row chrF"),
            "How the per-row chrF of the test outputs is spread.",
        ),
    ]
    if empty:
        parts.append(note(f"{empty:,} of {len(outputs):,} outputs are empty."))
    return parts

"""The data doctor: find what is wrong with labelled text data before training on it.

``diagnose`` takes the splits as tables and returns a JSON-able report; ``format_report``
renders it for the terminal. Nothing here changes the data (see :mod:`tunelab.data.clean`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.clean import is_blank
from tunelab.data.duplicates import conflicting_labels, duplicate_summary, leakage
from tunelab.data.label_noise import label_error_summary, suspected_label_errors
from tunelab.data.text_quality import text_problems

TOO_SMALL_TO_LEARN = 10  # rows of a class below which a classifier rarely learns it


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": int(values.max()),
            "mean": round(float(values.mean()), 1)}  # fmt: skip


def class_balance(labels: pd.Series) -> dict[str, Any]:
    """Counts per class, the imbalance ratio, and classes too small to learn or stratify."""
    flat = labels.explode() if labels.map(lambda v: isinstance(v, list)).any() else labels
    counts = flat.astype(str).value_counts()
    return {
        "counts": {str(k): int(v) for k, v in counts.items()},
        "classes": len(counts),
        "imbalance_ratio": round(float(counts.max() / counts.min()), 2) if len(counts) else None,
        "too_small_to_learn": [str(k) for k, v in counts.items() if v < TOO_SMALL_TO_LEARN],
        "too_small_to_stratify": [str(k) for k, v in counts.items() if v < 3],
    }


def lengths(texts: pd.Series, tokenizer: Any = None, max_length: int | None = None) -> dict:
    """Length distribution in characters and, with a tokenizer, in tokens and truncation share."""
    chars = texts.astype(str).str.len().to_numpy()
    result: dict[str, Any] = {"characters": _percentiles(chars)}
    if tokenizer is not None:
        ids = tokenizer(texts.astype(str).tolist(), truncation=False, verbose=False)["input_ids"]
        tokens = np.array([len(row) for row in ids])
        result["tokens"] = _percentiles(tokens)
        if max_length:
            result["max_length"] = max_length
            result["truncated_share"] = round(float((tokens > max_length).mean()), 4)
    return result


def diagnose(
    splits: dict[str, pd.DataFrame],
    text_column: str,
    label_column: str | None = None,
    tokenizer: Any = None,
    max_length: int | None = None,
    find_label_errors: bool = True,
    probabilities: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Examine each split and the splits against each other.

    Args:
        splits: ``{"train": frame, "validation": ..., "test": ...}`` from ``read_table``.
        text_column / label_column: the columns to examine (no labels: unlabelled data).
        tokenizer / max_length: report token lengths and the share ``max_length`` truncates.
        find_label_errors: run confident learning on the training split (single-label).
        probabilities: per-row class probabilities of train from a fine-tuned model; by
            default out-of-fold ones from a TF-IDF model.

    Returns:
        The report: per split, then ``leakage`` and ``label_errors``.
    """
    started = time.perf_counter()
    report: dict[str, Any] = {"splits": {}}
    for name, frame in splits.items():
        texts = frame[text_column]
        section: dict[str, Any] = {
            "file": frame.attrs.get("source"),
            "rows": len(frame),
            "unparsable_lines": frame.attrs.get("bad_lines", []),
            "empty_texts": [int(r) for r in frame.index[texts.map(is_blank)]],
        }
        valid = frame[~texts.map(is_blank)]
        if label_column:
            section["empty_labels"] = [
                int(r) for r in frame.index[frame[label_column].map(is_blank)]
            ]
            valid = valid[~valid[label_column].map(is_blank)]
        section["duplicates"] = duplicate_summary(valid[text_column])
        if label_column:
            section["conflicts"] = conflicting_labels(valid[text_column], valid[label_column])
            section["class_balance"] = class_balance(valid[label_column])
        section["lengths"] = lengths(valid[text_column], tokenizer, max_length)
        section["text_problems"] = text_problems(valid[text_column])
        report["splits"][name] = section
    if len(splits) > 1:
        report["leakage"] = leakage({n: f[text_column].dropna() for n, f in splits.items()})
    train = splits.get("train")
    if find_label_errors and label_column and train is not None:
        report["label_errors"] = _label_errors(
            train, text_column, label_column, probabilities, seed
        )
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def _label_errors(
    train: pd.DataFrame, text_column: str, label_column: str, probabilities: Any, seed: int
) -> dict[str, Any]:
    rows = train[~train[text_column].map(is_blank) & ~train[label_column].map(is_blank)]
    labels = rows[label_column]
    if labels.map(lambda v: isinstance(v, list)).any():
        return {"skipped": "label-error detection covers single-label data"}
    counts = labels.astype(str).value_counts()
    if len(counts) < 2 or counts.min() < 2:
        return {"skipped": "needs at least two classes with two rows each"}
    errors = suspected_label_errors(rows[text_column], labels, probabilities, seed)
    summary = label_error_summary(errors, len(rows))
    summary["rows"] = [int(r) for r in errors["row"]]
    if probabilities is None:
        summary["method"] = "out-of-fold TF-IDF char 1-3-gram logistic model + cleanlab"
    else:
        summary["method"] = "the given model's probabilities + cleanlab"
    return summary


def _line(label: str, count: int, total: int, rows: list | None = None, unit: str = "rows") -> str:
    share = f" ({count / total:.1%})" if total else ""
    where = f"  e.g. {unit} {', '.join(map(str, rows[:5]))}" if rows else ""
    return f"  {label}: {count}{share}{where}"


def format_report(report: dict[str, Any]) -> str:
    """A readable terminal summary of a :func:`diagnose` report."""
    out: list[str] = []
    for name, s in report["splits"].items():
        total = s["rows"]
        out.append(f"{name}: {s['file']} — {total} rows")
        if s["unparsable_lines"]:
            out.append(_line("unparsable lines", len(s["unparsable_lines"]), total,
                             s["unparsable_lines"], unit="lines"))  # fmt: skip
        out.append(_line("empty texts", len(s["empty_texts"]), total, s["empty_texts"]))
        if "empty_labels" in s:
            out.append(_line("empty labels", len(s["empty_labels"]), total, s["empty_labels"]))
        d = s["duplicates"]
        out.append(_line("exact duplicates", d["exact_duplicates"], total))
        out.append(_line("near duplicates", d["near_duplicates"], total,
                         [r for e in d["examples"] for r in e["rows"][:2]]))  # fmt: skip
        if "conflicts" in s:
            c = s["conflicts"]
            out.append(f"  texts with conflicting labels: {c['conflicting_texts']} "
                       f"({c['rows_in_conflict']} rows)")  # fmt: skip
            b = s["class_balance"]
            counts = ", ".join(f"{k} {v}" for k, v in list(b["counts"].items())[:8])
            out.append(f"  classes: {b['classes']} ({counts}); imbalance {b['imbalance_ratio']}")
            if b["too_small_to_learn"]:
                out.append(f"  classes too small to learn: {', '.join(b['too_small_to_learn'])}")
        chars = s["lengths"]["characters"]
        if chars:
            out.append(f"  length in characters: median {chars['p50']:.0f}, "
                       f"p99 {chars['p99']:.0f}, max {chars['max']}")  # fmt: skip
        if "truncated_share" in s["lengths"]:
            out.append(f"  truncated at max_length {s['lengths']['max_length']}: "
                       f"{s['lengths']['truncated_share']:.1%}")  # fmt: skip
        for problem, found in s["text_problems"].items():
            if found["rows"]:
                rows = [e["row"] for e in found["examples"]]
                out.append(_line(problem.replace("_", " "), found["rows"], total, rows))
    for pair, found in report.get("leakage", {}).items():
        held = pair.split("_in_")
        out.append(f"leakage: {found['near']} {held[0]} texts also in {held[1]} "
                   f"({found['exact']} exact)")  # fmt: skip
    errors = report.get("label_errors")
    if errors:
        if "skipped" in errors:
            out.append(f"label errors: skipped ({errors['skipped']})")
        else:
            out.append(f"suspected label errors in train: {errors['suspected']} "
                       f"({errors['share']:.1%})")  # fmt: skip
            for e in errors["examples"][:5]:
                out.append(f"  row {e['row']}: given '{e['given']}', suggested "
                           f"'{e['suggested']}' — {str(e['text'])[:60]}")  # fmt: skip
    out.append(f"(doctor took {report['seconds']:.1f} s)")
    return "\n".join(out)


def doctor_summary(report: dict[str, Any]) -> list[str]:
    """The few lines of the doctor's findings that ``tunelab train`` prints."""
    lines = []
    for name, s in report["splits"].items():
        found = [f"{s['rows']:,} rows"]
        d = s["duplicates"]
        if d["exact_duplicates"] or d["near_duplicates"]:
            exact, near = d["exact_duplicates"], d["near_duplicates"]
            found.append(f"{exact:,} exact / {near:,} near duplicates")
        if s.get("conflicts", {}).get("conflicting_texts"):
            found.append(f"{s['conflicts']['conflicting_texts']:,} texts with conflicting labels")
        balance = s.get("class_balance", {})
        if (balance.get("imbalance_ratio") or 0) >= 3:
            found.append(f"class imbalance {balance['imbalance_ratio']}:1")
        lines.append(f"data doctor: {name}: " + ", ".join(found))
    for pair, leak in report.get("leakage", {}).items():
        if leak["near"]:
            held, seen = pair.split("_in_")
            lines.append(f"data doctor: {leak['near']} {held} texts also occur in {seen} (leakage)")
    return lines

"""The data doctor: find what is wrong with labelled text data before training on it.

``diagnose`` takes the splits as tables and returns a JSON-able report; ``format_report``
renders it for the terminal. Nothing here changes the data (see :mod:`tunelab.data.clean`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.clean import is_blank, label_set
from tunelab.data.duplicates import (
    conflicting_labels,
    duplicate_summary,
    leakage,
    near_duplicate_keys,
)
from tunelab.data.label_noise import (
    encoded_labels,
    label_error_summary,
    out_of_fold_probabilities,
    skill_over_chance,
    suspected_label_errors,
    suspected_multi_label_errors,
)
from tunelab.data.normalize import joined_cells
from tunelab.data.text_quality import text_problems

TOO_SMALL_TO_LEARN = 10  # rows of a class below which a classifier rarely learns it
# a share of labels the model disputes beyond which it is the model that cannot tell the
# labels apart, not the labels that are wrong: label sets of GoEmotions 54% (3% planted:
# 3.8%); single labels of SST-2 17-25% (by features), shuffled 49%; the reviews with 5%
# planted 15%
TOO_MANY_SUSPECTS = 0.25
QUICK_MODEL = "out-of-fold TF-IDF char 1-3-gram (+ word 1-2-gram)"  # the doctor's own judge
PAIR_JOINER = " ‖ "  # how a row's two texts read as one, in the report and its keys


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    top = values.max()
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99),
            "max": int(top) if np.issubdtype(values.dtype, np.integer) else float(top),
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


def label_values(labels: pd.Series, separator: str | None = None) -> pd.Series:
    """Labels as the doctor compares them: a row of several labels (a list, or a string split
    on ``separator``) as its sorted, distinct label names; a single label as it is."""
    return labels.map(lambda value: label_set(value, separator))


def numeric_targets(labels: pd.Series) -> np.ndarray | None:
    """The labels as numbers when they are scores rather than classes (every one a number,
    some not whole, as regression is recognised), else None."""
    numbers = pd.to_numeric(labels, errors="coerce")
    if not len(labels) or numbers.isna().any() or (numbers == numbers.round()).all():
        return None
    return numbers.to_numpy(dtype=float)


def lengths(
    texts: pd.Series,
    tokenizer: Any = None,
    max_length: int | None = None,
    pairs: pd.Series | None = None,
) -> dict:
    """Length distribution in characters and, with a tokenizer, in tokens and truncation share
    (of both texts together, as the model reads them, where rows hold a pair)."""
    chars = texts.astype(str).str.len().to_numpy()
    result: dict[str, Any] = {"characters": _percentiles(chars)}
    if pairs is not None:
        result["pair_characters"] = _percentiles(pairs.astype(str).str.len().to_numpy())
    if tokenizer is not None:
        second = None if pairs is None else pairs.astype(str).tolist()
        ids = tokenizer(texts.astype(str).tolist(), second, truncation=False, verbose=False)[
            "input_ids"
        ]
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
    probabilities: np.ndarray | pd.DataFrame | None = None,
    seed: int = 0,
    text_pair_column: str | None = None,
    label_separator: str | None = None,
) -> dict[str, Any]:
    """Examine each split and the splits against each other.

    Args:
        splits: ``{"train": frame, "validation": ..., "test": ...}`` from ``read_table``.
        text_column / label_column: the columns to examine (no labels: unlabelled data).
        tokenizer / max_length: report token lengths and the share ``max_length`` truncates.
        find_label_errors: run confident learning on the training split (single-label).
        probabilities: per-row class probabilities of train from a fine-tuned model (for
            several labels a row, each label's own); an array in sorted-label order, or a
            table with a column per label the model knows; by default out-of-fold ones from
            a TF-IDF model.
        text_pair_column: the second text of rows that hold a pair (premise and hypothesis,
            query and passage): duplicates, conflicts and leakage are judged on both texts.
        label_separator: labels written as ``a|b`` strings hold several labels a row;
            classes are then counted per label.

    Returns:
        The report: the columns read, per split, then ``leakage`` and ``label_errors``.
    """
    started = time.perf_counter()
    columns = {"text": text_column, "text_pair": text_pair_column, "label": label_column,
               "label_separator": label_separator}  # fmt: skip
    report: dict[str, Any] = {"columns": {k: v for k, v in columns.items() if v}, "splits": {}}
    row_texts = {name: _row_texts(frame, text_column, text_pair_column)
                 for name, frame in splits.items()}  # fmt: skip
    # normalised once a split (missing texts aside): duplicates, conflicts and leakage all
    # compare these
    keys = {name: near_duplicate_keys(texts.dropna()) for name, texts in row_texts.items()}
    split_labels: dict[str, pd.Series] = {}  # each split's labels, rows with a text and label
    for name, frame in splits.items():
        blank = frame[text_column].map(is_blank)
        if text_pair_column:
            blank |= frame[text_pair_column].map(is_blank)
        section: dict[str, Any] = {
            "file": frame.attrs.get("source"),
            "rows": len(frame),
            "unparsable_lines": frame.attrs.get("bad_lines", []),
            "empty_texts": [int(r) for r in frame.index[blank]],
        }
        valid = frame[~blank]
        if label_column:
            section["empty_labels"] = [
                int(r) for r in frame.index[frame[label_column].map(is_blank)]
            ]
            valid = valid[~valid[label_column].map(is_blank)]
        texts = row_texts[name].loc[valid.index]
        valid_keys = keys[name].loc[valid.index]
        section["duplicates"] = duplicate_summary(texts, keys=valid_keys)
        if label_column:
            labels = label_values(valid[label_column], label_separator)
            section["conflicts"] = conflicting_labels(texts, labels, keys=valid_keys)
            targets = numeric_targets(labels)
            if targets is not None:
                section["target_values"] = _percentiles(targets) | {"min": float(targets.min())}
            else:
                section["class_balance"] = class_balance(labels)
                split_labels[name] = labels  # classes only: scores differ by degree
        pairs = valid[text_pair_column] if text_pair_column else None
        section["lengths"] = lengths(valid[text_column], tokenizer, max_length, pairs)
        section["text_problems"] = text_problems(texts)
        report["splits"][name] = section
    if len(splits) > 1:
        report["leakage"] = leakage({n: texts.dropna() for n, texts in row_texts.items()},
                                    keys=keys, labels=split_labels)  # fmt: skip
    train = splits.get("train")
    if find_label_errors and label_column and train is not None:
        report["label_errors"] = _label_errors(
            train, row_texts["train"], label_column, probabilities, seed,
            paired=text_pair_column is not None, separator=label_separator,
        )  # fmt: skip
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def _row_texts(frame: pd.DataFrame, text_column: str, text_pair_column: str | None) -> pd.Series:
    """What the doctor compares between rows: the text, or both texts of a pair as one."""
    if not text_pair_column:
        return frame[text_column]
    joined = joined_cells(frame, [text_column, text_pair_column], PAIR_JOINER)
    return joined.where(frame[text_column].notna() & frame[text_pair_column].notna())


def _label_errors(
    train: pd.DataFrame,
    texts: pd.Series,
    label_column: str,
    probabilities: Any,
    seed: int,
    paired: bool = False,
    separator: str | None = None,
) -> dict[str, Any]:
    rows = train[~texts.map(is_blank) & ~train[label_column].map(is_blank)]
    labels = label_values(rows[label_column], separator)
    if paired and probabilities is None:
        return {
            "skipped": "a TF-IDF model of the texts cannot judge a label that depends on how "
            "two texts relate; --model with a model fine-tuned on these pairs gives its "
            "probabilities"
        }
    if isinstance(probabilities, pd.DataFrame):
        probabilities = probabilities.loc[rows.index]
    if labels.map(lambda v: isinstance(v, list)).any():
        return _multi_label_errors(texts.loc[rows.index], labels, probabilities, seed)
    if numeric_targets(labels) is not None:
        return {"skipped": "label-error detection covers classes, not numeric scores"}
    counts = labels.astype(str).value_counts()
    if len(counts) < 2 or counts.min() < 2:
        return {"skipped": "needs at least two classes with two rows each"}
    given = probabilities is not None
    judge = "the given model" if given else "the quick TF-IDF model"
    texts = texts.loc[rows.index]
    names, label_ids = encoded_labels(labels)
    if isinstance(probabilities, pd.DataFrame):
        probabilities = _model_columns(probabilities, names)
        if isinstance(probabilities, str):
            return {"skipped": probabilities}
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)  # its classes
    if probabilities is None:
        probabilities = out_of_fold_probabilities(texts.astype(str).tolist(), label_ids, seed)
    skill = skill_over_chance(label_ids, np.asarray(probabilities))
    if skill["balanced_accuracy"] <= skill["chance_level"]:
        return {
            "skipped": f"{judge}'s balanced accuracy on these labels, "
            f"{skill['balanced_accuracy']:.2f}, is no better than chance "
            f"({skill['chance_level']:.2f} at most for labels unrelated to the texts): it cannot "
            "tell these classes apart, so no row is singled out",
            **skill,
        }
    errors = suspected_label_errors(texts, labels, probabilities, seed)
    method = "the given model's probabilities" if given else f"{QUICK_MODEL} logistic model"
    named = _named_or_too_many(errors, len(rows), judge, "the labels", f"{method} + cleanlab")
    return {**named, **skill}


def _multi_label_errors(
    texts: pd.Series, labels: pd.Series, probabilities: Any, seed: int
) -> dict[str, Any]:
    """Suspected label errors in label sets, from a given model's per-label probabilities
    or the quick model's; skipped, with the reason, where the model disagrees with too many
    rows for them to be errors rather than labels it cannot tell apart."""
    sets = labels.map(lambda v: v if isinstance(v, list) else [str(v).strip()])
    names = sorted({name for names in sets for name in names})
    if len(sets) < 20 or len(names) < 2:
        return {"skipped": "needs at least two labels and twenty rows"}
    if isinstance(probabilities, pd.DataFrame):
        probabilities = _model_columns(probabilities, names)
        if isinstance(probabilities, str):
            return {"skipped": probabilities}
    errors = suspected_multi_label_errors(texts, sets, seed, probabilities)
    if probabilities is None:
        judge, method = "the quick TF-IDF model", f"{QUICK_MODEL} one-vs-rest logistic model"
    else:
        judge, method = "the given model", "the given model's per-label probabilities"
    method += " + cleanlab (multi-label)"
    return _named_or_too_many(errors, len(sets), judge, "the label sets", method)


def _named_or_too_many(
    errors: pd.DataFrame, rows: int, judge: str, what: str, method: str
) -> dict[str, Any]:
    """The suspects to name, or, where the model disputes more than
    :data:`TOO_MANY_SUSPECTS` of the rows, why none is named, with its top disagreements."""
    summary = label_error_summary(errors, rows)
    share = len(errors) / rows
    if share > TOO_MANY_SUSPECTS:
        return {
            "skipped": f"{judge} disagrees with {share:.0%} of {what}, too many to be label "
            "errors: it tells these labels apart poorly or they are that noisy (its most "
            "confident disagreements are in the examples), so no row is singled out",
            "disagreeing_share": round(share, 4),
            "examples": summary["examples"],
        }
    return {**summary, "rows": [int(r) for r in errors["row"]], "method": method}


def _model_columns(probabilities: pd.DataFrame, names: list[str]) -> np.ndarray | str:
    """A model's probability columns for the data's labels, in ``names`` order; the reason
    to skip where the data holds a label the model was not trained on."""
    unknown = [name for name in names if name not in probabilities.columns]
    if unknown:
        return (f"the given model was not trained on the label(s) {', '.join(unknown[:5])} "
                "that these rows carry; give a model trained on these labels")  # fmt: skip
    return probabilities[names].to_numpy(dtype=float)


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
        if "class_balance" in s:
            b = s["class_balance"]
            counts = ", ".join(f"{k} {v}" for k, v in list(b["counts"].items())[:8])
            out.append(f"  classes: {b['classes']} ({counts}); imbalance {b['imbalance_ratio']}")
            if b["too_small_to_learn"]:
                out.append(f"  classes too small to learn: {', '.join(b['too_small_to_learn'])}")
        if "target_values" in s:
            t = s["target_values"]
            out.append(f"  scores: min {t['min']:g}, median {t['p50']:g}, max {t['max']:g}")
        chars = s["lengths"]["characters"]
        if chars:
            out.append(f"  length in characters: median {chars['p50']:.0f}, "
                       f"p99 {chars['p99']:.0f}, max {chars['max']}")  # fmt: skip
        second = s["lengths"].get("pair_characters")
        if second:
            out.append(f"  second text, characters: median {second['p50']:.0f}, "
                       f"p99 {second['p99']:.0f}, max {second['max']}")  # fmt: skip
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
        if found.get("other_label"):
            out.append(f"  {found['other_label']} of them labelled otherwise in {held[1]}")
            for e in found["other_label_examples"][:5]:
                out.append(f"  row {e['row']}: '{e['label']}' here, "
                           f"{', '.join(repr(x) for x in e['labels_there'])} in {held[1]} — "
                           f"{str(e['text'])[:60]}")  # fmt: skip
    errors = report.get("label_errors")
    if errors:
        if "skipped" in errors:
            out.append(f"label errors: skipped ({errors['skipped']})")
        else:
            out.append(f"suspected label errors in train: {errors['suspected']} "
                       f"({errors['share']:.1%})")  # fmt: skip
        for e in errors.get("examples", [])[:5]:
            out.append(f"  row {e['row']}: given '{e['given']}', suggested "
                       f"'{e['suggested']}' — {str(e['text'])[:60]}")  # fmt: skip
    out.append(f"(doctor took {report['seconds']:.1f} s)")
    return "\n".join(out)


def doctor_summary(report: dict[str, Any]) -> list[str]:
    """The few lines of the doctor's findings that ``tunelab train`` prints."""
    lines = [f"data doctor: {name}: " + ", ".join(split_findings(s))
             for name, s in report["splits"].items()]  # fmt: skip
    return lines + leakage_lines(report)


def split_findings(split: dict[str, Any], duplicates: bool = True) -> list[str]:
    """One split's findings worth a line: its rows, duplicates (unless the caller words them
    itself), conflicts, imbalance."""
    found = [f"{split['rows']:,} rows"]
    d = split["duplicates"]
    if duplicates and (d["exact_duplicates"] or d["near_duplicates"]):
        exact, near = d["exact_duplicates"], d["near_duplicates"]
        found.append(f"{exact:,} exact / {near:,} near duplicates")
    if split.get("conflicts", {}).get("conflicting_texts"):
        found.append(f"{split['conflicts']['conflicting_texts']:,} texts with conflicting labels")
    balance = split.get("class_balance", {})
    if (balance.get("imbalance_ratio") or 0) >= 3:
        found.append(f"class imbalance {balance['imbalance_ratio']}:1")
    return found


def leakage_lines(report: dict[str, Any]) -> list[str]:
    """A line for each held-out split whose texts also occur in another split."""
    lines = []
    for pair, leak in report.get("leakage", {}).items():
        if leak["near"]:
            held, seen = pair.split("_in_")
            texts = "text also occurs" if leak["near"] == 1 else "texts also occur"
            line = f"data doctor: {leak['near']} {held} {texts} in {seen} (leakage)"
            if leak.get("other_label"):
                line += (
                    f", {leak['other_label']} of them with another label there: the splits "
                    f"label the same texts differently, so {held} scores measure that too"
                )
            lines.append(line)
    return lines

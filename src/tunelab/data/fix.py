"""``tunelab doctor``: read files, diagnose them, and with ``--fix`` write the cleaned data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.config import CleanConfig
from tunelab.data.clean import clean_rows, drop_invalid_rows
from tunelab.data.conll import format_conll
from tunelab.data.doctor import diagnose, format_report
from tunelab.data.image_doctor import PREFIX as DOCTOR_PREFIX
from tunelab.data.load import read_table, require_columns
from tunelab.data.media import LABEL_COLUMN, MEDIA_FOLDER
from tunelab.errors import UserError
from tunelab.outputs import write_json, write_jsonl, write_text


def _write_table(path: Path, frame: pd.DataFrame) -> None:
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        write_jsonl(path, frame.to_dict(orient="records"))
    else:
        write_text(path, frame.to_csv(index=False))


def doctor_files(
    files: dict[str, Path],
    text_column: str,
    label_column: str | None,
    tokenizer: Any = None,
    max_length: int | None = None,
    encoding: str | None = None,
    report_path: Path = Path("data_report.json"),
    fixed_path: Path | None = None,
    find_label_errors: bool = True,
    drop_label_errors: bool = False,
    probabilities_of: Any = None,
    strict: bool = False,
    already_read: dict[str, pd.DataFrame] | None = None,
    text_pair_column: str | None = None,
    label_separator: str | None = None,
    fmt: str = "auto",
) -> str:
    """Diagnose data files, write the JSON report, and optionally the cleaned training data.

    With ``fixed_path``: invalid rows, conflicting labels and exact duplicates are removed
    and texts normalised (the defaults of ``data.clean``); suspected label errors go to a
    CSV beside it for a person to review (and are removed too with ``drop_label_errors``).

    Args:
        probabilities_of: optional function from the training table to class
            probabilities, e.g. a fine-tuned model's, for label errors: a table with a
            column per label the model knows, or an array in sorted-label order.
        strict: stop at the first unparsable line or empty text or label instead of
            counting them.
        already_read: tables of ``files`` the caller has read (as this function reads them,
            unparsable lines skipped unless ``strict``), by split, so they are not read twice.
        text_pair_column / label_separator: rows that hold two texts; labels that hold
            several (see :func:`~tunelab.data.doctor.diagnose`).
        fmt: the files' format (``auto``: from each file's extension).

    Returns:
        The terminal report.

    Raises:
        UserError: with ``strict``, naming the first unparsable line or empty cell.
    """
    frames = {}
    texts = [text_column] + ([text_pair_column] if text_pair_column else [])
    columns = texts + ([label_column] if label_column else [])
    options = {text_column: "--text-column", label_column or "": "--label-column",
               text_pair_column or "": "--text-pair-column"}  # fmt: skip
    for split, path in files.items():
        frame = (already_read or {}).get(split)
        if frame is None:
            frame = read_table(path, fmt, encoding=encoding, skip_bad_lines=not strict)
        require_columns(frame, columns, options)
        if strict:
            drop_invalid_rows(frame, columns, drop=False)
        frames[split] = frame
    probabilities = None
    train = frames["train"]
    complete = train[texts].notna().all(axis=1) & (
        train[label_column].notna() if label_column else True
    )
    if probabilities_of is not None and find_label_errors and label_column and complete.all():
        probabilities = probabilities_of(train)
    report = diagnose(
        frames, text_column, label_column, tokenizer, max_length, find_label_errors,
        probabilities, text_pair_column=text_pair_column, label_separator=label_separator,
    )  # fmt: skip
    if fixed_path is not None:
        report["fix"] = _fix(frames["train"], texts, label_column, report, fixed_path,
                             drop_label_errors, label_separator)  # fmt: skip
    write_json(report_path, report)
    text = format_report(report) + f"\nreport written to {report_path}"
    if fixed_path is not None:
        fixed = report["fix"]
        text += (f"\ncleaned data: {fixed['rows_after']} of {fixed['rows_before']} rows written "
                 f"to {fixed_path}")  # fmt: skip
        unparsable = len(report["splits"]["train"].get("unparsable_lines", []))
        if unparsable:
            text += f" ({unparsable} unparsable line{'s' * (unparsable > 1)} left out)"
        if fixed.get("label_errors_file"):
            text += f"; suspected label errors to review: {fixed['label_errors_file']}"
    return text


def _fix(
    frame: pd.DataFrame,
    text_columns: list[str],
    label_column: str | None,
    report: dict,
    fixed_path: Path,
    drop_label_errors: bool,
    label_separator: str | None = None,
) -> dict[str, Any]:
    if label_column is None:
        raise UserError("--fix needs a --label-column: duplicates and conflicts depend on labels")
    before = len(frame)
    frame, _ = drop_invalid_rows(frame, [*text_columns, label_column], drop=True)
    frame, steps = clean_rows(frame, text_columns, label_column, CleanConfig(), is_training=True,
                              label_separator=label_separator)  # fmt: skip
    result: dict[str, Any] = {"rows_before": before, "steps": steps}
    errors = report.get("label_errors", {})
    if errors.get("all"):
        review = fixed_path.with_name(fixed_path.stem + ".label_errors.csv")
        table = pd.DataFrame(errors["all"]).merge(
            frame[text_columns], left_on="row", right_index=True
        )  # most likely first, as cleanlab ranked them; rows cleaning removed are gone
        write_text(review, table.to_csv(index=False))
        result["label_errors_file"] = str(review)
        if drop_label_errors:
            frame = frame.loc[~frame.index.isin(errors["rows"])]
    _write_table(fixed_path, frame)
    result["rows_after"] = len(frame)
    return result


def doctor_tagging_files(
    files: dict[str, Path],
    task: Any,
    encoding: str | None = None,
    tag_column: int = -1,
    report_path: Path = Path("data_report.json"),
    fixed_path: Path | None = None,
) -> str:
    """``tunelab doctor --task token-classification``: tag statistics, broken sequences,
    duplicates and leakage; with ``fixed_path``, the training rows with broken sequences
    repaired and exact duplicates dropped (CoNLL for a ``.conll`` path, else JSONL).

    Returns:
        The terminal report.
    """
    tables = {
        split: read_table(path, encoding=encoding, tag_column=tag_column)
        for split, path in files.items()
    }
    fit = task.recognise(tables["train"], frozenset())  # the columns train would read
    for guess in fit.columns if fit is not None else ():
        if guess.key == "data.spans_column":  # CLUENER's spans under their own name
            task.spans_column = guess.column
    frames = {split: task.standardize(table) for split, table in tables.items()}
    report = task.diagnose(frames, False, 0)
    if fixed_path is not None:
        train, steps = task.clean(frames["train"], CleanConfig(), is_training=True)
        rows = [{"tokens": list(r.tokens), "tags": list(r.tags)} for r in train.itertuples()]
        if fixed_path.suffix.lower() in {".conll", ".iob", ".bio", ".bioes", ".bmes"}:
            write_text(fixed_path, format_conll(rows))
        else:
            write_jsonl(fixed_path, rows)
        report["fix"] = {
            "rows_before": len(frames["train"]),
            "rows_after": len(rows),
            "repaired_rows": len(frames["train"].attrs.get("broken_rows", [])),
            "scheme": task.scheme,
            **steps,
        }
    write_json(report_path, report)
    lines = [format_report(report), *task.doctor_lines(report)]
    lines.append(f"report written to {report_path}")
    if fixed_path is not None:
        fixed = report["fix"]
        lines.append(
            f"cleaned data: {fixed['rows_after']} of {fixed['rows_before']} rows written to "
            f"{fixed_path} ({fixed['repaired_rows']} with repaired tag sequences)"
        )
    return "\n".join(lines)


def doctor_image_files(
    files: dict[str, Path], task: Any, labelled: bool, report_path: Path = Path("data_report.json")
) -> str:
    """``tunelab doctor --task image-classification``: the image task's doctor on class
    folders or tables of image paths (unreadable files, exact and near duplicates, leakage,
    sizes and outliers, classes); writes the JSON report.

    Args:
        task: the image task (its ``drop_invalid`` off: stop at the first unreadable image).
        labelled: read labels (a folder without class sub-folders is read without).

    Returns:
        The terminal report.
    """
    frames = {}
    for split, path in files.items():
        frame = read_table(path, media=task.input_kind)
        loose = frame.attrs.get("kind") == MEDIA_FOLDER and LABEL_COLUMN not in frame.columns
        frames[split] = task.standardize(frame, with_labels=labelled and not loose)
    report = task.diagnose(frames, False, 0)
    write_json(report_path, report)
    return format_file_report(task, report) + f"\nreport written to {report_path}"


def format_file_report(task: Any, report: dict[str, Any]) -> str:
    """The terminal report of ``tunelab doctor`` for a task's files: the lines its
    ``doctor_lines`` gives training, without their ``data doctor:`` prefix."""
    lines = [line.removeprefix(DOCTOR_PREFIX) for line in task.doctor_lines(report)]
    if "seconds" in report:
        lines.append(f"(doctor took {report['seconds']:.1f} s)")
    return "\n".join(lines)

"""What the Data page shows: a file as the loader reads it, the task's columns mapped onto
the file's, the data doctor's report and its fix, and model suggestions for the data.

Every answer is computed by the functions the CLI calls (``read_table``, the task's
``standardize``, :func:`tunelab.api.doctor`, :func:`tunelab.models.catalog.recommend`) and
comes with the equivalent command; errors are theirs, word for word.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.config import RunConfig, yaml_value
from tunelab.data.language import detect_language
from tunelab.data.load import read_table
from tunelab.data.split_folder import expand_split_folder
from tunelab.errors import UserError
from tunelab.tasks import Task, doctor_checks, task_class, task_from_run_config
from tunelab.ui.form import equivalent
from tunelab.ui.workspace import CLEANED, Workspace

PREVIEW_ROWS = 20
CELL_CHARACTERS = 300


def column_keys(task: Task) -> list[str]:
    """The config keys that name the columns ``task`` reads, in the task's order."""
    return list(dict.fromkeys(task.required_columns(with_labels=True).values()))


def _default_of(key: str) -> Any:
    node: Any = RunConfig.model_validate({}).model_dump(mode="json")
    for part in key.split("."):
        node = node[part]
    return node


def _cell(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, (list, dict)) or hasattr(value, "tolist"):
        value = json.dumps(value.tolist() if hasattr(value, "tolist") else value,
                           ensure_ascii=False, default=str)  # fmt: skip
    text = str(value)
    return text if len(text) <= CELL_CHARACTERS else text[: CELL_CHARACTERS - 1] + "…"


def guess_columns(frame: pd.DataFrame, keys: list[str]) -> dict[str, str | None]:
    """A first mapping of config keys onto the file's columns, for the user to correct.

    A key's default column when the file has it (``text``, ``label``, ...), else a column of
    a close name, else by content: a ``label`` key takes the unused column with the fewest
    distinct values, any other the unused column with the longest texts; ``None`` when no
    column is left (the task's default stays).
    """
    columns = [str(c) for c in frame.columns]
    guesses: dict[str, str | None] = {}
    unused = list(columns)

    def take(column: str | None, key: str) -> None:
        guesses[key] = column
        if column in unused:
            unused.remove(column)

    for key in keys:  # the exact names first, so that a fuzzy match cannot take them
        default = str(_default_of(key))
        if default in unused:
            take(default, key)
    for key in keys:
        if key in guesses:
            continue
        default = str(_default_of(key)).lower()
        same = [c for c in unused if c.strip().lower() == default or default in c.lower()]
        if same:
            take(same[0], key)
        elif not unused:
            guesses[key] = None
        elif "label" in key or "tags" in key:
            take(min(unused, key=lambda c: frame[c].astype(str).nunique()), key)
        else:
            take(max(unused, key=lambda c: frame[c].astype(str).str.len().mean()), key)
    return guesses


def mapping_overrides(
    path: str, task: str, fmt: str, encoding: str | None, mapping: dict[str, str | None]
) -> list[str]:
    """The ``key=value`` overrides of a data file and its column mapping."""
    values: dict[str, Any] = {"task": task, "data.train": path}
    if fmt != "auto":
        values["data.format"] = fmt
    if encoding:
        values["data.encoding"] = encoding
    values.update({key: column for key, column in mapping.items() if column is not None})
    return [f"{key}={yaml_value(value)}" for key, value in values.items()]


def preview(
    ws: Workspace,
    path: str,
    task: str = "text-classification",
    fmt: str = "auto",
    encoding: str | None = None,
    mapping: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """The file as the loader reads it, the task's column mapping (guessed unless given) and
    whether the task accepts the file with that mapping.

    Raises:
        UserError: for a path outside the workspace, or a file the loader refuses (binary,
            damaged, unknown format): the CLI's sentence, about ``data.train``.
    """
    file = ws.path(path, "data.train")
    if file.is_dir():  # a folder of train/validation/test files: its training file
        file = expand_split_folder(file, None, None)[0]
    frame = read_table(file, fmt, encoding or None)
    task_class(task, "task")  # an unknown task: the CLI's sentence, before the columns
    keys = column_keys(task_from_run_config(RunConfig.model_validate({"task": task})))
    guessed = mapping is None
    if mapping is None:
        mapping = _guesses(ws, frame, path, task, fmt, encoding, keys)
    check = check_mapping(ws, frame, path, task, fmt, encoding, mapping)
    head = frame.head(PREVIEW_ROWS)
    return {
        "path": path,
        "format": frame.attrs.get("format", "folder" if file.is_dir() else fmt),
        "encoding": frame.attrs.get("encoding"),
        "delimiter": frame.attrs.get("delimiter"),
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "head": [[_cell(v) for v in row] for row in head.itertuples(index=False)],
        "row_numbers": [int(i) if isinstance(i, (int, float)) else str(i) for i in head.index],
        "mapping": [_mapped(key, mapping.get(key)) for key in keys],
        "guessed": guessed,
        "check": check,
    }


def _mapped(key: str, column: str | None) -> dict[str, Any]:
    from tunelab.config import field_description

    return {"key": key, "column": column, "default": _default_of(key),
            "description": field_description(key)}  # fmt: skip


def _guesses(
    ws: Workspace, frame: pd.DataFrame, path: str, task: str, fmt: str, encoding: str | None,
    keys: list[str],
) -> dict[str, str | None]:  # fmt: skip
    defaults: dict[str, str | None] = {
        k: str(_default_of(k)) if str(_default_of(k)) in frame.columns else None for k in keys
    }
    if check_mapping(ws, frame, path, task, fmt, encoding, defaults)["ok"]:
        return defaults  # the task reads the file as it is (prompt/completion, image folders)
    return guess_columns(frame, keys)


def check_mapping(
    ws: Workspace, frame: pd.DataFrame, path: str, task: str, fmt: str, encoding: str | None,
    mapping: dict[str, str | None],
) -> dict[str, Any]:  # fmt: skip
    """Whether the task reads ``frame`` with ``mapping``: its ``standardize``, as training
    calls it; an error is the CLI's sentence and the config key it is about."""
    from tunelab.errors import one_line
    from tunelab.ui.form import field_of

    overrides = mapping_overrides(path, task, fmt, encoding, mapping)
    try:
        config = equivalent(overrides)["config"]
        task_from_run_config(config).standardize(frame.copy())
    except UserError as exc:
        message = ws.shorten(one_line(exc))
        return {"ok": False, "error": message, "field": field_of(message, list(mapping)),
                "overrides": overrides}  # fmt: skip
    return {"ok": True, "error": None, "field": None, "overrides": overrides}


def run_doctor(
    ws: Workspace,
    path: str,
    task: str = "text-classification",
    text_column: str = "text",
    label_column: str | None = "label",
    fix: bool = False,
    encoding: str | None = None,
) -> dict[str, Any]:
    """The data doctor on a file, as ``tunelab doctor`` runs it; with ``fix``, the cleaned
    file under ``cleaned/`` (and the suspected label errors beside it, to review).

    Returns:
        ``{"text": the terminal report, "report": the JSON report, "command", "fixed",
        "label_errors_file"}`` (paths relative to the workspace).

    Raises:
        UserError: the CLI's sentence (unknown task, missing column, unreadable file).
    """
    from tunelab import api

    file = ws.path(path, "data.train")
    checks = doctor_checks()
    if task not in checks:
        raise UserError(f"the doctor does not know task '{task}'; use {' or '.join(checks)}")
    stem = Path(path).name.split(".")[0] or "data"
    report = ws.state / "doctor" / f"{stem}.json"
    suffix = {"tags": ".conll" if file.suffix.lower() == ".conll" else ".jsonl"}.get(
        checks[task], ".jsonl" if file.suffix.lower() in (".jsonl", ".ndjson") else ".csv"
    )
    fixed = ws.root / CLEANED / f"{stem}.clean{suffix}" if fix else None
    command = ["tunelab", "doctor", path]
    if checks[task] == "task":  # summaries, chats, pairs, captions, audio: training's checks
        command += ["--task", task]
        text = api.doctor_as_training(file, task=task, encoding=encoding, report=report,
                                      fixed=fixed)  # fmt: skip
    elif checks[task] == "tags":
        command += ["--task", task]
        text = api.doctor_tagging(file, encoding=encoding, report=report, fixed=fixed)
    elif checks[task] == "images":  # a class folder or a table of image paths
        if fixed is not None:
            raise UserError(
                "--fix is not offered for images; remove or replace the files the report names"
            )
        command += ["--task", task]
        command += ["--label-column", label_column] if label_column else []
        text = api.doctor_images(file, label_column=label_column, report=report)
    else:
        command += ["--text-column", text_column]
        command += ["--label-column", label_column] if label_column else []
        text = api.doctor(file, text_column=text_column, label_column=label_column,
                          encoding=encoding, report=report, fixed=fixed)  # fmt: skip
    if encoding:
        command += ["--encoding", encoding]
    command += ["--report", ws.relative(report)]
    if fixed is not None:
        command += ["--fix", "--out", ws.relative(fixed)]
    found = json.loads(report.read_text(encoding="utf-8"))
    errors_file = (found.get("fix") or {}).get("label_errors_file")
    return {
        "text": ws.shorten(text),
        "report": found,
        "command": " ".join(shlex.quote(part) for part in command),
        "fixed": ws.relative(fixed) if fixed is not None else None,
        "label_errors_file": ws.relative(Path(errors_file)) if errors_file else None,
    }


def suggest_models(
    ws: Workspace,
    task: str,
    path: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    language: str | None = None,
    examples: int | None = None,
    classes: int | None = None,
) -> dict[str, Any]:
    """Models for the task with memory and time estimates, from ``tunelab recommend``'s code;
    the language, examples and classes are read from the data file when not given."""
    from tunelab.models.catalog import recommend, recommendation_json

    chosen = task_class(task, "--task")()
    if path:
        frame = read_table(ws.path(path, "data.train"))
        examples = examples or len(frame)
        if text_column in frame.columns and language is None:
            found = detect_language(frame[text_column].dropna().astype(str))
            language = {"zh": "zh", "en": "en"}.get(found, "multi")
        if label_column in frame.columns and classes is None:
            classes = max(int(frame[label_column].astype(str).nunique()), 1)
    language, examples, classes = language or "multi", examples or 1000, classes or 2
    options = recommend(chosen, language, examples, classes)
    command = (f"tunelab recommend --task {task} --language {language} --examples {examples} "
               f"--classes {classes}")  # fmt: skip
    return {"language": language, "examples": examples, "classes": classes,
            "options": recommendation_json(options), "command": command}  # fmt: skip

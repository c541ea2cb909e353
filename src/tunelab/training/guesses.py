"""The task and columns a run config leaves to the data, read from the training file.

Every registered task says how the table fits it (``Task.recognise``); the strongest fit
wins, and the chosen task fills the column keys the user did not set. What was guessed, from
what, and the flag that overrides it goes to one log line and to ``data_report.json``; two
equally plausible tasks or columns stop the run with one sentence naming both and the flag.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tunelab.config import RunConfig, given_keys
from tunelab.data.load import read_table
from tunelab.errors import UserError
from tunelab.tasks import TASKS, task_class
from tunelab.tasks.base import DataFit

log = logging.getLogger("tunelab")


@dataclass
class Guesses:
    """The training table as read for guessing (reused by the data stage) and what the data
    decided: ``[{"key", "value", "evidence", "flag"}]``, in the order they were decided."""

    train: pd.DataFrame | None = None
    decided: list[dict[str, str]] = field(default_factory=list)

    def as_report(self) -> dict[str, Any]:
        """The ``guessed`` entry of ``data_report.json``."""
        source = self.train.attrs.get("source") if self.train is not None else None
        return {"file": source, "keys": self.decided}


def guess_from_data(config: RunConfig, train: pd.DataFrame | None = None) -> Guesses:
    """Fill ``config.task`` and the task's column keys that the user left unset, in place.

    Args:
        train: the training table when the caller has read it already (the doctor reads it
            forgivingly, skipping unparsable lines); otherwise it is read from the config.

    Returns:
        The training table and what was decided (nothing when the user set it all).

    Raises:
        UserError: when two tasks fit the table equally well, or two columns are equally
            plausible for one key, naming both and the flag that decides; and for an
            unreadable training file.
    """
    data, given = config.data, frozenset(given_keys(config))
    named = task_class(config.task) if "task" in given else None  # a bad name before the data
    if data.train is None:  # the data stage says what is missing
        return Guesses()
    if train is None:
        train = read_table(
            data.train, data.format, data.encoding, data.max_rows, tag_column=data.tag_column,
            media=named.input_kind if named is not None else None, sheet=data.sheet,
        )  # fmt: skip
    guesses = Guesses(train)
    if named is not None:
        fit = _fit(named, config, train, given)
    else:
        name, fit = _strongest_fit(config, train, given)
        if name is not None and fit is not None:
            config.task = name
            guesses.decided.append(_decided("task", name, fit.reason, "--task"))
    if fit is None:  # nothing fits: the data stage names the missing column
        if named is None:  # a named task (the doctor's) words its own refusal
            _refuse_texts_without_labels(config, train, given)
        return guesses
    if fit.ambiguity:
        raise UserError(fit.ambiguity)
    for column in fit.columns:
        *sections, key = column.key.split(".")
        node: Any = config
        for section in sections:
            node = getattr(node, section)
        setattr(node, key, column.column)
        guesses.decided.append(_decided(column.key, column.column, column.evidence, column.flag))
    if guesses.decided:
        log.info("%s", guess_line(guesses))
    return guesses


def _refuse_texts_without_labels(
    config: RunConfig, train: pd.DataFrame, given: frozenset[str]
) -> None:
    """Stop a table of texts where no column reads as labels with what was found, instead of
    the data stage's "no column 'text'" for the default name of a column nobody set: the
    columns, those holding a single value (a file sorted by its labels, cut by
    ``data.max_rows``, holds one), and the flags that decide."""
    from tunelab.data.columns import guess_text_column
    from tunelab.data.sniff import delimiter_hint

    data = config.data
    if "data.label_column" in given or data.label_column in train.columns:
        return
    if {"tokens", "tags"} <= set(train.columns):
        return
    if guess_text_column(train, data.text_column).column is None:
        return
    names = list(map(str, train.columns))
    if delimiter_hint(names, data.label_column) or delimiter_hint(names, data.text_column):
        return  # 'text;label' read as one column: the data stage names the delimiter
    single = [(str(name), train[name].dropna()) for name in train.columns]
    single = [(name, values) for name, values in single
              if len(values) > 1 and values.astype(str).nunique() == 1]  # fmt: skip
    found = "".join(
        f"; '{name}' holds one value, '{values.iloc[0]}', in every row" for name, values in single
    )
    if single and data.max_rows is not None and len(train) >= data.max_rows:
        found += (
            f" of the first {data.max_rows} (data.max_rows reads a file's first rows, which in "
            "a file sorted by its labels hold one; data.train_rows draws a stratified sample)"
        )
    raise UserError(
        f"{train.attrs.get('source', 'the training data')} has no column that reads as labels "
        f"(its columns are: {', '.join(map(str, train.columns))}{found}); name it with "
        "--label-column, or name the task with --task"
    )


def task_fit(config: RunConfig, train: pd.DataFrame) -> tuple[str | None, str | None]:
    """The task the training table fits best, as :func:`guess_from_data` decides it, without
    changing ``config`` or logging, and the reason its fit gives (``"Alpaca
    'instruction'/'output' columns"``), for a command that says why; ``(None, None)`` when no
    task fits.

    Raises:
        UserError: when two tasks fit equally well, naming both and ``--task``.
    """
    name, fit = _strongest_fit(config, train, frozenset(given_keys(config)))
    return name, fit.reason if fit is not None else None


def _fit(
    task_type: Any, config: RunConfig, train: pd.DataFrame, given: frozenset[str]
) -> DataFit | None:
    try:
        task = task_type.from_run_config(config)
    except UserError:  # a task whose package is missing cannot be the guess
        return None
    return task.recognise(train, given)


def _strongest_fit(
    config: RunConfig, train: pd.DataFrame, given: frozenset[str]
) -> tuple[str | None, DataFit | None]:
    fits = {name: _fit(task_type, config, train, given) for name, task_type in TASKS.items()}
    found = {name: fit for name, fit in fits.items() if fit is not None}
    if not found:
        return None, None
    best = max(fit.strength for fit in found.values())
    top = [(name, fit) for name, fit in found.items() if fit.strength == best]
    if len(top) > 1:
        (first, one), (second, other) = top[:2]
        raise UserError(
            f"{train.attrs.get('source', 'the training data')} fits the task {first} "
            f"({one.reason}) as well as {second} ({other.reason}); name the task with --task"
        )
    return top[0]


def _decided(key: str, value: str, evidence: str, flag: str) -> dict[str, str]:
    return {"key": key, "value": value, "evidence": evidence, "flag": flag}


def guess_line(guesses: Guesses) -> str:
    """One log line: what was guessed from which file, from what, and the flag for each."""
    parts = []
    for item in guesses.decided:
        role = item["key"].rsplit(".", 1)[-1].replace("_", " ")
        parts.append(f"{role} '{item['value']}' ({item['evidence']}; {item['flag']} overrides)")
    source = guesses.train.attrs.get("source", "the data") if guesses.train is not None else ""
    return f"guessed from {source}: " + ", ".join(parts)

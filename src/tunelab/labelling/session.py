"""What ``tunelab label`` does, as functions of paths: a labelling session (a person at the
terminal, or an oracle with ``simulate``), export, import and agreement."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.errors import UserError
from tunelab.labelling.agreement import agreement
from tunelab.labelling.entities import EntityQueue, Span, parse_spans, show_spans
from tunelab.labelling.formats import (
    export_doccano,
    export_label_studio,
    import_doccano,
    import_label_studio,
)
from tunelab.labelling.journal import LabelJournal, write_labelled
from tunelab.labelling.queue import LabelQueue, Suggestion, read_unlabelled
from tunelab.labelling.simulate import simulate


def parse_label_set(labels: str, path: Path | None = None) -> list[str]:
    """``"a,b,c"`` as a list; at least two distinct labels."""
    names = list(dict.fromkeys(part.strip() for part in labels.split(",") if part.strip()))
    if len(names) < 2:
        raise UserError(f"--labels {labels!r} names fewer than two labels; give e.g. --labels "
                        "positive,negative")  # fmt: skip
    return names


def open_session(
    data: Path, journal_path: Path, label_set: list[str], text_column: str | None = None,
    entities: bool = False, background: bool = False, **queue_options: Any,
) -> tuple[pd.DataFrame, LabelJournal, LabelQueue]:  # fmt: skip
    """Read the texts, replay the journal and build the queue with the labels so far
    (``entities``: ``label_set`` is the entity types and labels are spans). The replay
    retrains as the labels come, in order; ``background`` retrains of the labels after it
    run in a thread (a person waits for no fit)."""
    items = read_unlabelled(data, text_column)
    journal = LabelJournal(journal_path)
    queue = (EntityQueue if entities else LabelQueue)(items, label_set, **queue_options)
    by_annotator = journal.state.by_annotator()
    for item, label in journal.labels().items():
        if isinstance(label, str) == entities:
            held, wanted = ("class labels", "entities") if entities else ("entity spans", "classes")
            raise UserError(f"label journal {journal_path} holds {held}; to label {wanted}, "
                            "give another --journal")  # fmt: skip
        if item in queue.row_of:
            queue.add_label(item, label)
            queue.labelled_by[item] = set(by_annotator.get(item, {}))
    for annotator, skipped in journal.state.skipped.items():
        for item in skipped:
            queue.skip(item, annotator)
    queue.background = background
    return items, journal, queue


def run_simulation(
    data: Path, journal_path: Path, output: Path, label_set: list[str], label_column: str,
    budget: int, echo: Callable[[str], None], text_column: str | None = None,
    target: float = 0.9, **queue_options: Any,
) -> dict[str, Any]:  # fmt: skip
    """Label ``data`` with its own ``label_column`` as the oracle, journal every label and
    write the labelled file."""
    items, journal, queue = open_session(data, journal_path, label_set, text_column,
                                         **queue_options)  # fmt: skip
    if label_column not in items.columns:
        raise UserError(f"{data} has no column {label_column!r} to simulate answers from; "
                        "name it with --label-column")  # fmt: skip
    if isinstance(queue, EntityQueue):
        oracle = _span_oracle(data, items, label_column, queue)
    else:
        oracle = dict(zip(items["id"], items[label_column].astype(str), strict=True))
        for item, label in oracle.items():
            if label not in queue.label_set:
                allowed = ",".join(queue.label_set)
                raise UserError(f"{data} row with id {item} has label {label!r}, which is not "
                                f"one of --labels {allowed}; add it or fix the row")  # fmt: skip

    def acknowledge(item: str, label: Any, reason: str) -> None:
        shown = label if isinstance(label, str) else show_spans(texts[item], label)
        echo(f"labelled {item} {shown} ({reason})")

    texts = dict(zip(items["id"], items["text"], strict=True))

    result = simulate(queue, oracle, budget, journal=journal, on_label=acknowledge)
    rows = write_labelled(output, texts, journal.labels())
    summary = {"labels": result["labels"], "rows_written": rows, "journal": str(journal_path),
               "output": str(output)}  # fmt: skip
    if queue.progress:
        summary["held_out"] = queue.progress
        summary["estimate"] = queue.estimate(target)
    return summary


def run_interactive(
    data: Path, journal_path: Path, output: Path, label_set: list[str], annotator: str,
    ask: Callable[[Suggestion, list[str]], str], echo: Callable[[str], None],
    text_column: str | None = None, target: float = 0.9, **queue_options: Any,
) -> int:  # fmt: skip
    """A person labels at the terminal: ``ask`` shows a suggestion and returns a label, its
    number, ``u`` (undo), ``s`` (skip) or ``q`` (quit); for entities, spans as
    :func:`parse_spans` reads them, ``-`` for none, or nothing to accept the guessed spans.
    Returns the labels given."""
    items, journal, queue = open_session(data, journal_path, label_set, text_column,
                                         background=True, **queue_options)  # fmt: skip
    texts = dict(zip(items["id"], items["text"], strict=True))
    given, measured = 0, len(queue.progress)
    while True:
        suggestions = queue.next(annotator)
        if not suggestions:
            echo("nothing left to label")
            break
        answer = ask(suggestions[0], queue.label_set).strip()
        item = suggestions[0].item
        if answer == "q":
            queue.release(item)
            break
        if answer == "s":
            skip_text(journal, queue, item, annotator)
            continue
        if answer == "u":
            undone = undo_label(journal, queue, annotator)
            echo(f"undid the label of {undone}")
        else:
            try:
                if isinstance(queue, EntityQueue):
                    spans = suggestions[0].spans if answer == "" else None
                    if answer == "" and spans is None:
                        echo("no guess to accept yet: type spans like 张三=PER, or - for none")
                        continue
                    if spans is None:
                        spans = parse_spans(answer, texts[item], queue.label_set)
                    give_spans(journal, queue, item, spans, annotator)
                else:
                    if answer.isdigit() and not 1 <= int(answer) <= len(queue.label_set):
                        echo(f"no label number {answer}")
                        continue
                    label = queue.label_set[int(answer) - 1] if answer.isdigit() else answer
                    give_label(journal, queue, item, label, annotator)
            except UserError as exc:
                echo(str(exc))
                continue
            given += 1
        write_labelled(output, texts, journal.labels())
        if len(queue.progress) > measured:  # a retrain scored the held-out sample
            measured = len(queue.progress)
            echo(progress_line(queue, target) or "")
    return given


def progress_line(queue: LabelQueue, target: float) -> str | None:
    """The model's latest score on the held-out sample and the learning-curve estimate for
    ``target``; ``None`` before the first measurement."""
    if not queue.progress:
        return None
    last = queue.progress[-1]
    return (f"{queue.metric} {last['score']:.3f} on {last['held_out']} held-out texts after "
            f"{last['labels']} labels; {queue.estimate(target)['message']}")  # fmt: skip


def give_label(
    journal: LabelJournal, queue: LabelQueue, item: str, label: str, annotator: str,
    note: str = "",
) -> None:  # fmt: skip
    """Journal ``annotator``'s ``label`` of ``item`` (durable on return), then tell the queue.

    Raises:
        UserError: for a label not in the label set (nothing is journalled).
    """
    queue.check_label(label)
    journal.label(item, label, annotator=annotator, note=note)
    queue.add_label(item, label, annotator)


def give_spans(
    journal: LabelJournal, queue: EntityQueue, item: str, spans: list[Span], annotator: str,
    note: str = "",
) -> None:  # fmt: skip
    """Journal ``annotator``'s entity ``spans`` of ``item`` (durable on return), then tell the
    queue.

    Raises:
        UserError: for spans outside the text, overlapping or of an unknown type (nothing is
            journalled).
    """
    spans = queue.checked(item, spans)
    journal.label(item, spans=spans, annotator=annotator, note=note)
    queue.add_label(item, spans, annotator)


def _span_oracle(
    data: Path, items: pd.DataFrame, column: str, queue: EntityQueue
) -> dict[str, list[Span]]:
    """Each row's spans from ``column``: a list of [start, end, type] (doccano's ``label``),
    or that list as JSON text (a CSV cell)."""
    import json

    oracle = {}
    for item, value in zip(items["id"], items[column], strict=True):
        try:
            spans = json.loads(value) if isinstance(value, str) else list(value)
            oracle[item] = queue.checked(item, [tuple(span) for span in spans])
        except (ValueError, TypeError, UserError) as exc:
            what = "valid entity spans [[start, end, type], ...]"
            raise UserError(f"{data} row with id {item}: column {column!r} does not hold "
                            f"{what} ({exc})") from None  # fmt: skip
    return oracle


def skip_text(
    journal: LabelJournal, queue: LabelQueue, item: str, annotator: str, note: str = ""
) -> None:
    """Journal that ``annotator`` passed over ``item``; the queue never offers it them again."""
    journal.skip(item, annotator, note)
    queue.skip(item, annotator)


def undo_label(journal: LabelJournal, queue: LabelQueue, annotator: str) -> str:
    """Take back ``annotator``'s latest label; returns the item it was on.

    Raises:
        UserError: when the annotator has nothing to undo.
    """
    record = journal.undo(annotator)
    queue.remove_label(record["item"], annotator)
    labels = journal.labels()
    if record["item"] in labels:  # someone else's (or an earlier) label remains
        queue.add_label(record["item"], labels[record["item"]])
        if annotator in journal.state.by_annotator().get(record["item"], {}):
            queue.labelled_by.setdefault(record["item"], set()).add(annotator)  # an earlier one
    return str(record["item"])


def export_labels(data: Path, journal_path: Path, output: Path, fmt: str) -> int:
    """Write the journal's labels (with the texts from ``data``) as Label Studio JSON or doccano
    JSONL. Returns the number of tasks or rows."""
    items = read_unlabelled(data)
    texts = dict(zip(items["id"], items["text"], strict=True))
    journal = LabelJournal(journal_path)
    if fmt == "label-studio":
        return export_label_studio(output, texts, journal.state.by_annotator())
    if fmt == "doccano":
        return export_doccano(output, texts, journal.labels())
    raise UserError(f"--format {fmt!r} is not one of: label-studio, doccano")


def import_labels(source: Path, journal_path: Path, label_set: list[str], fmt: str) -> int:
    """Append the labels of a Label Studio or doccano export to the journal (each checked
    against the label set first: a bad file adds nothing). Returns the labels added."""
    if fmt == "auto":
        fmt = "doccano" if source.suffix.lower() == ".jsonl" else "label-studio"
    if fmt not in ("label-studio", "doccano"):
        raise UserError(f"--format {fmt!r} is not one of: auto, label-studio, doccano")
    rows = import_label_studio(source) if fmt == "label-studio" else import_doccano(source)
    rows = [row for row in rows if row["label"] is not None]
    for row in rows:
        if row["label"] not in label_set:
            raise UserError(f"{source} gives item {row['id']} the label {row['label']!r}, which "
                            f"is not one of --labels {','.join(label_set)}; add it to --labels "
                            "or fix the file")  # fmt: skip
    journal = LabelJournal(journal_path)
    for row in rows:
        journal.label(row["id"], row["label"], annotator=row["annotator"],
                      note=f"imported from {source.name}")  # fmt: skip
    return len(rows)


def review_queue(journal: LabelJournal) -> list[dict[str, Any]]:
    """The disagreements no reviewer has decided yet: ``[{"item", "labels": {annotator:
    label}}]``, in item order."""
    reviewed = {item for item, entries in journal.state.history.items()
                if any(entry.get("role") == "review" for entry in entries)}  # fmt: skip
    disagreements = agreement(journal.state.by_annotator())["disagreements"]
    return [entry for entry in disagreements if entry["item"] not in reviewed]


def run_review(
    data: Path, journal_path: Path, output: Path, label_set: list[str], reviewer: str,
    ask: Callable[[str, str, dict[str, Any], list[str]], str], echo: Callable[[str], None],
    text_column: str | None = None, entities: bool = False,
) -> int:  # fmt: skip
    """A reviewer settles the disagreements one at a time: ``ask(item, text, labels, choices)``
    returns the final label, its number, ``s`` (leave it for later) or ``q`` (quit). Each
    decision is journalled with ``role: review`` (it wins over the annotators' labels) and
    the labelled file rewritten. With ``entities`` (``label_set`` the entity types), the
    choices are the annotators (in name order): the answer is the number of the one whose
    spans stand, spans typed as :func:`parse_spans` reads them, or ``-`` for none. Returns
    the decisions made."""
    if not journal_path.exists():
        raise UserError(f"label journal {journal_path} does not exist; check the path")
    items = read_unlabelled(data, text_column)
    texts = dict(zip(items["id"], items["text"], strict=True))
    journal = LabelJournal(journal_path)
    pending = review_queue(journal)
    if not pending:
        echo(f"no disagreements to review in {journal_path}")
    decided = 0
    for entry in pending:
        item = entry["item"]
        if item not in texts:
            echo(f"item {item} is in the journal but not in {data}; left for later")
            continue
        annotators = sorted(entry["labels"])
        while True:
            choices = annotators if entities else label_set
            answer = ask(item, texts[item], entry["labels"], choices).strip()
            if answer in ("q", "s"):
                break
            try:
                if entities:
                    settle_spans(journal, item, answer, entry["labels"], texts[item],
                                 label_set, reviewer)  # fmt: skip
                else:
                    settle(journal, item, answer, label_set, reviewer)
            except UserError as exc:
                echo(str(exc))
                continue
            write_labelled(output, texts, journal.labels())
            decided += 1
            break
        if answer == "q":
            break
    return decided


def review_label(answer: str, label_set: list[str]) -> str:
    """The label a reviewer's ``answer`` names: one of ``label_set``, or its number from 1.

    Raises:
        UserError: for a number without a label or a label outside the set.
    """
    if answer.isdigit() and not 1 <= int(answer) <= len(label_set):
        raise UserError(f"no label number {answer}")
    label = label_set[int(answer) - 1] if answer.isdigit() else answer
    if label not in label_set:
        raise UserError(f"label {label!r} is not one of: {', '.join(label_set)}; use one of them")
    return label


def settle(
    journal: LabelJournal, item: str, answer: str, label_set: list[str], reviewer: str
) -> str:
    """Journal ``reviewer``'s final label of the disagreement on ``item`` (the label or its
    number, see :func:`review_label`) with ``role: review``: it wins over the annotators'
    labels in the labelled file and stays out of the agreement figures. Durable on return;
    returns the label.

    Raises:
        UserError: for an answer naming no label of the set (nothing is journalled).
    """
    label = review_label(answer, label_set)
    journal.label(item, label, annotator=reviewer, role="review")
    return label


def settle_spans(
    journal: LabelJournal, item: str, answer: str, given: dict[str, Any], text: str,
    entity_types: list[str], reviewer: str,
) -> list[Span]:  # fmt: skip
    """Journal ``reviewer``'s final spans of the disagreement on ``item`` with ``role:
    review``: the spans of the annotator numbered ``answer`` (from 1, in name order), or
    spans typed as :func:`parse_spans` reads them (``-`` for none). Returns them.

    Raises:
        UserError: for a number without an annotator or spans that do not parse (nothing is
            journalled).
    """
    annotators = sorted(given)
    if answer.isdigit():
        if not 1 <= int(answer) <= len(annotators):
            raise UserError(f"no annotator number {answer}; give 1 to {len(annotators)}, or "
                            "the spans")  # fmt: skip
        spans = [tuple(span) for span in given[annotators[int(answer) - 1]]]
    else:
        spans = parse_spans(answer, text, entity_types)
    journal.label(item, spans=spans, annotator=reviewer, role="review")
    return spans


def journal_agreement(journal_path: Path) -> dict[str, Any]:
    """Cohen's kappa and disagreements of the journal's double-labelled items."""
    if not journal_path.exists():
        raise UserError(f"label journal {journal_path} does not exist; check the path")
    return agreement(LabelJournal(journal_path).state.by_annotator())

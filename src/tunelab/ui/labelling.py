"""What the Label page does: ``tunelab label run`` in a browser, one text at a time.

A session is the CLI's: :func:`~tunelab.labelling.session.open_session` reads the texts,
replays the journal and builds the queue; every label, skip and undo goes through the same
functions as the terminal labeller, journalled before the answer returns, and the labelled
file is rewritten after each. The journal and the labelled file lie next to the data
(``uploads/texts.csv`` -> ``uploads/texts.journal.jsonl``, ``uploads/texts.labelled.csv``), so
``tunelab label run`` from the workspace continues where the page stopped, and the other way
round. One queue per (data file, label set, options) stays in memory, the
:data:`KEPT_SESSIONS` most recently used; after a restart, an eviction, or when another
process (the CLI) wrote to the journal, it is rebuilt from the journal (every label is there,
so nothing is lost; only the texts leased to an annotator are offered afresh).

Several annotators: with a double rate, the queue offers a share of the labelled texts to a
second annotator, blind (``--double-rate``); the page shows Cohen's kappa on them, and its
review mode walks the disagreements as ``tunelab label review`` does
(:func:`~tunelab.labelling.session.review_queue`, :func:`~tunelab.labelling.session.settle`).
"""

from __future__ import annotations

import contextlib
import shlex
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.labelling.agreement import agreement
from tunelab.labelling.entities import EntityQueue, parse_entity_types, show_spans
from tunelab.labelling.journal import LabelJournal, write_labelled
from tunelab.labelling.queue import LabelQueue
from tunelab.labelling.session import (
    give_label,
    give_spans,
    open_session,
    parse_label_set,
    progress_line,
    review_queue,
    settle,
    skip_text,
    undo_label,
)
from tunelab.ui.workspace import Workspace

# a session holds its texts and a TF-IDF queue in memory: 250 MB at 50,000 reviews (measured)
KEPT_SESSIONS = 4


@dataclass
class Session:
    """One data file labelled with one label set: its texts, journal and queue."""

    data: Path
    journal: LabelJournal
    queue: LabelQueue
    texts: dict[str, str]
    output: Path
    stamp: tuple[float, int]  # the data file's mtime and size when it was read


def journal_path(data: Path, entities: bool = False) -> Path:
    """The journal beside ``data``: ``texts.csv`` -> ``texts.journal.jsonl`` (entities:
    ``texts.entities.journal.jsonl``, so one file can have both)."""
    return data.with_name(f"{data.stem}{'.entities' if entities else ''}.journal.jsonl")


def labelled_path(data: Path, entities: bool = False) -> Path:
    """The labelled file beside ``data``; never ``data`` itself, even when ``data`` is a
    labelled file (``texts.labelled.csv`` -> ``texts.labelled.labelled.csv``). Entities:
    ``texts.entities.jsonl``, token-classification rows."""
    if entities:
        return data.with_name(f"{data.stem}.entities.jsonl")
    return data.with_name(f"{data.stem}.labelled.csv")


class Labelling:
    """The workspace's labelling sessions, shared by the page's requests."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.sessions: OrderedDict[tuple[str, tuple[str, ...], bool, int, float], Session] = (
            OrderedDict()
        )
        self.lock = threading.Lock()  # one request at a time: the queue is not thread-safe

    def session(
        self, path: str, labels: str, entities: bool = False, holdout: int = 0,
        double_rate: float = 0.0,
    ) -> Session:  # fmt: skip
        """The session of ``path`` and ``labels`` (entity types with ``entities``), opened
        (or rebuilt) when needed; ``holdout`` and ``double_rate`` are the queue's (as
        ``--holdout`` and ``--double-rate``).

        Raises:
            UserError: for a path outside the workspace, a missing, empty or text-less file
                (about ``path``), or fewer than two labels (about ``labels``).
        """
        with about("labels"):
            label_set = parse_entity_types(labels) if entities else parse_label_set(labels)
        with about("path"):
            data = self.ws.path(path, "path")
            if not data.is_file():
                raise UserError(f"data file {data} does not exist; check the path")
        key = (self.ws.relative(data), tuple(label_set), entities, holdout, double_rate)
        stat = data.stat()
        found = self.sessions.get(key)
        if (
            found is None
            or found.stamp != (stat.st_mtime, stat.st_size)
            or _written_elsewhere(found.journal)
        ):
            with about("path"):
                items, journal, queue = open_session(data, journal_path(data, entities),
                                                     label_set, entities=entities,
                                                     holdout=holdout, double_rate=double_rate,
                                                     background=True)  # fmt: skip
            texts = dict(zip(items["id"], items["text"], strict=True))
            found = Session(data, journal, queue, texts, labelled_path(data, entities),
                            (stat.st_mtime, stat.st_size))  # fmt: skip
            self.sessions[key] = found
            write_labelled(found.output, texts, journal.labels())
        self.sessions.move_to_end(key)
        while len(self.sessions) > KEPT_SESSIONS:  # the least recently used goes first
            self.sessions.popitem(last=False)
        return found

    def state(
        self, path: str, labels: str, annotator: str, entities: bool = False,
        holdout: int = 0, target: float = 0.9, double_rate: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """The next text for ``annotator`` and the progress so far (with ``holdout``, the
        model's score on that many random held-out texts and how many labels reach
        ``target``; with double-labelled texts, the annotators' agreement)."""
        with self.lock:
            found = self.session(path, labels, entities, holdout, double_rate)
            return self._view(found, annotator, target)

    def label(
        self, path: str, labels: str, annotator: str, item: str, label: Any,
        entities: bool = False, holdout: int = 0, target: float = 0.9, note: str = "",
        double_rate: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Label ``item`` (the text the page shows) with a class, or with entity spans
        ``[(start, end, type), ...]``, and answer with the next one."""
        with self.lock:
            found = self.session(path, labels, entities, holdout, double_rate)
            _known(found, item)
            with about("label"):
                if isinstance(found.queue, EntityQueue):
                    give_spans(found.journal, found.queue, item, label, annotator, note)
                    label = show_spans(found.texts[item], found.queue.labels[item])
                else:
                    give_label(found.journal, found.queue, item, label, annotator, note)
            return self._written(found, annotator, f"labelled {item} {label}", target)

    def skip(
        self, path: str, labels: str, annotator: str, item: str, entities: bool = False,
        holdout: int = 0, target: float = 0.9, note: str = "", double_rate: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Pass over ``item``: it is not offered to ``annotator`` again."""
        with self.lock:
            found = self.session(path, labels, entities, holdout, double_rate)
            _known(found, item)
            skip_text(found.journal, found.queue, item, annotator, note)
            return self._written(found, annotator, f"skipped {item}", target)

    def undo(
        self, path: str, labels: str, annotator: str, entities: bool = False,
        holdout: int = 0, target: float = 0.9, double_rate: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Take back ``annotator``'s latest label."""
        with self.lock:
            found = self.session(path, labels, entities, holdout, double_rate)
            with about("label"):
                item = undo_label(found.journal, found.queue, annotator)
            return self._written(found, annotator, f"undid the label of {item}", target)

    def progress(
        self, path: str, labels: str, entities: bool = False, holdout: int = 0,
        target: float = 0.9, double_rate: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """The held-out measurements and whether the model is still retraining: the page asks
        for them while a background retrain runs, to draw its point without a new label."""
        with self.lock:
            queue = self.session(path, labels, entities, holdout, double_rate).queue
            return {"retraining": queue.retraining(), "measured": progress_line(queue, target),
                    "history": held_out_history(queue, target)}  # fmt: skip

    def review(
        self, path: str, labels: str, reviewer: str, later: Sequence[str] = (),
        entities: bool = False, holdout: int = 0, double_rate: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """The next disagreement for ``reviewer`` to settle (``tunelab label review``): the
        text and each annotator's label; ``later`` are the items put off in this pass.

        Raises:
            UserError: with ``entities`` (the review settles class labels, as the CLI's).
        """
        if entities:
            with about("label"):
                raise UserError("the review settles disagreements on class labels, as tunelab "
                                "label review does; entity spans have no review yet")  # fmt: skip
        with self.lock:
            found = self.session(path, labels, False, holdout, double_rate)
            return self._review_view(found, reviewer, later)

    def settle(
        self, path: str, labels: str, reviewer: str, item: str, label: str,
        later: Sequence[str] = (), holdout: int = 0, double_rate: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """``reviewer``'s final ``label`` of the disagreement on ``item``, journalled with
        ``role: review`` by the CLI's :func:`~tunelab.labelling.session.settle`; answers with
        the next disagreement."""
        with self.lock:
            found = self.session(path, labels, False, holdout, double_rate)
            _known(found, item)
            with about("label"):
                if item not in {entry["item"] for entry in review_queue(found.journal)}:
                    raise UserError(f"item {item} has no disagreement left to settle (another "
                                    "reviewer may have settled it); reload the page")  # fmt: skip
                label = settle(found.journal, item, label, found.queue.label_set, reviewer)
            found.queue.add_label(item, label)  # the queue learns the decision, as on a replay
            write_labelled(found.output, found.texts, found.journal.labels())
            return {**self._review_view(found, reviewer, later), "done": f"settled {item}: {label}"}

    def _review_view(self, found: Session, reviewer: str, later: Sequence[str]) -> dict[str, Any]:
        pending = [entry for entry in review_queue(found.journal) if entry["item"] in found.texts]
        waiting = [entry for entry in pending if entry["item"] not in set(later)]
        current = None
        if waiting:
            item = waiting[0]["item"]
            current = {"item": item, "text": found.texts[item], "given": waiting[0]["labels"]}
        command = ["tunelab", "label", "review", self.ws.relative(found.data), "--labels",
                   ",".join(found.queue.label_set), "--journal",
                   self.ws.relative(found.journal.path), "--out", self.ws.relative(found.output),
                   "--reviewer", reviewer]  # fmt: skip
        return {
            "path": self.ws.relative(found.data),
            "labels": found.queue.label_set,
            "current": current,
            "pending": len(pending),
            "agreement": agreement_summary(found),
            "journal": self.ws.relative(found.journal.path),
            "output": self.ws.relative(found.output),
            "command": " ".join(shlex.quote(part) for part in command),
        }

    def _written(self, found: Session, annotator: str, done: str, target: float) -> dict[str, Any]:
        write_labelled(found.output, found.texts, found.journal.labels())
        return {**self._view(found, annotator, target), "done": done}

    def _view(self, found: Session, annotator: str, target: float = 0.9) -> dict[str, Any]:
        # first, so a background fit that has just finished is installed before the
        # measurements are read: asked after them, it answered "done" beside the old
        # measurements, and the page, told no retrain was running, never asked again
        retraining = found.queue.retraining()
        suggestions = found.queue.next(annotator)
        labels = found.journal.labels()
        labelled = sum(1 for item in labels if item in found.texts)
        data = self.ws.relative(found.data)
        entities = isinstance(found.queue, EntityQueue)
        command = ["tunelab", "label", "run", data, "--entities" if entities else "--labels",
                   ",".join(found.queue.label_set),
                   "--journal", self.ws.relative(found.journal.path), "--out",
                   self.ws.relative(found.output)]  # fmt: skip
        if annotator != "me":
            command += ["--annotator", annotator]
        if found.queue.holdout:
            command += ["--holdout", str(found.queue.holdout), "--target", f"{target:g}"]
        if found.queue.double_rate:
            command += ["--double-rate", f"{found.queue.double_rate:g}"]
        current = None
        if suggestions:
            s = suggestions[0]
            current = {"item": s.item, "text": s.text, "reason": s.reason, "guess": s.guess,
                       "spans": s.spans}  # fmt: skip
        return {
            "path": data,
            "labels": found.queue.label_set,
            "entities": entities,
            "measured": progress_line(found.queue, target),
            "history": held_out_history(found.queue, target),
            "retraining": retraining,
            "agreement": agreement_summary(found),
            "current": current,
            "labelled": labelled,
            "total": len(found.texts),
            "journal": self.ws.relative(found.journal.path),
            "output": self.ws.relative(found.output),
            "command": " ".join(shlex.quote(part) for part in command),
        }


def agreement_summary(found: Session) -> dict[str, Any] | None:
    """The agreement on the double-labelled texts, as ``tunelab label agreement`` measures it
    (Cohen's kappa per pair, Fleiss' kappa with three annotators or more; span F1 per pair
    for entities), and the disagreements left to review, with a line for the page; ``None``
    before any text has two annotators' labels. Entity disagreements are counted, not
    offered for review (``to_review`` 0): the review settles class labels."""
    by_annotator = found.journal.state.by_annotator()
    if not any(len(given) > 1 for given in by_annotator.values()):
        return None
    measured = agreement(by_annotator)
    entities = isinstance(found.queue, EntityQueue)
    key, measure = ("span_f1", "span F1") if entities else ("kappa", "Cohen's kappa")
    pairs = [f"{pair[key]:.2f} ({' / '.join(pair['annotators'])}, {pair['items']} texts)"
             for pair in measured["pairs"] if pair.get(key) is not None]  # fmt: skip
    fleiss = ""
    if measured["annotators"] > 2 and measured["fleiss_kappa"] is not None:
        kappa, annotators = measured["fleiss_kappa"], measured["annotators"]
        fleiss = f"; Fleiss' kappa {kappa:.2f} ({annotators} annotators)"
    if entities:
        to_review = 0
        rest = f"{len(measured['disagreements'])} texts marked differently"
    else:
        to_review = sum(entry["item"] in found.texts for entry in review_queue(found.journal))
        rest = f"{to_review} disagreements to review"
    line = (f"{measured['double_labelled']} texts labelled twice; {measure} "
            f"{', '.join(pairs)}{fleiss}; {rest}")  # fmt: skip
    return {"double_labelled": measured["double_labelled"], "pairs": measured["pairs"],
            "fleiss_kappa": measured["fleiss_kappa"],
            "disagreements": len(measured["disagreements"]), "to_review": to_review,
            "line": line}  # fmt: skip


def held_out_history(queue: LabelQueue, target: float) -> dict[str, Any] | None:
    """The held-out score after each retrain, for the page's chart: ``{"metric", "target",
    "points": [{"labels", "score", "held_out"}]}`` (``labels``: the training labels the model
    had), or ``None`` without a held-out sample.

    The points are the queue's own :attr:`~tunelab.labelling.queue.LabelQueue.progress`, kept
    in memory with the session. A session rebuilt from the journal (a restart, an eviction,
    labels from the CLI) replays the labels in journal order through the same retrains, so the
    history comes back with it (after undos the replay may retrain at other label counts than
    the live session did, so a point can move).
    """
    if not queue.holdout:
        return None
    return {"metric": queue.metric, "target": target,
            "points": [dict(point) for point in queue.progress]}  # fmt: skip


@contextlib.contextmanager
def about(field: str) -> Iterator[None]:
    """User errors inside are about the page's control ``field`` (``path``, ``labels``,
    ``label``): the page shows the CLI's line next to it."""
    try:
        yield
    except UserError as exc:
        if not hasattr(exc, "field"):
            exc.field = field  # type: ignore[attr-defined]
        raise


def _known(found: Session, item: str) -> None:
    with about("label"):
        if item not in found.texts:
            raise UserError(f"item {item!r} is not in {found.data}; reload the page")


def _written_elsewhere(journal: LabelJournal) -> bool:
    """Whether another process (``tunelab label run``) appended to the journal since."""
    try:
        return journal.path.stat().st_size != journal.read_up_to
    except OSError:
        return True

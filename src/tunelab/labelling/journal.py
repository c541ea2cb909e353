"""The label journal: every label (and every undo) is one JSON line, on disk before the call
returns; replaying the lines gives the current labels.

The journal is the only source of truth. The consolidated labelled file is derived from it and
rewritten atomically, so a crash at any moment loses at most the label being written, which
was never acknowledged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.outputs import write_jsonl, write_text

Span = tuple[int, int, str]


@dataclass
class LabelState:
    """The labels a journal holds after replay.

    ``history[item]`` lists the item's live entries in journal order, each
    ``{"annotator", "label" or "spans", ...}``; an undo removes the annotator's latest one.
    """

    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_of: dict[str, list[str]] = field(default_factory=dict)  # annotator -> items, in order
    skipped: dict[str, set[str]] = field(default_factory=dict)  # annotator -> items passed over

    def apply(self, record: dict[str, Any]) -> None:
        """Apply one journal record (a label or an undo) to the state."""
        item, annotator = str(record["item"]), str(record["annotator"])
        if record.get("action") == "skip":
            self.skipped.setdefault(annotator, set()).add(item)
            return
        entries = self.history.setdefault(item, [])
        if record.get("action") == "undo":
            for i in range(len(entries) - 1, -1, -1):
                if entries[i]["annotator"] == annotator:
                    del entries[i]
                    break
            if not entries:
                self.history.pop(item, None)
            done = self.last_of.get(annotator, [])
            if item in done:
                done.reverse()
                done.remove(item)  # the latest occurrence
                done.reverse()
            return
        entries.append(record)
        self.last_of.setdefault(annotator, []).append(item)

    def labels(self) -> dict[str, Any]:
        """item -> its current label (or entity spans): a reviewer's decision when there is
        one, else the latest live entry of any annotator."""
        result = {}
        for item, entries in self.history.items():
            reviewed = [e for e in entries if e.get("role") == "review"]
            if entries:
                result[item] = _value((reviewed or entries)[-1])
        return result

    def by_annotator(self) -> dict[str, dict[str, Any]]:
        """item -> {annotator: that annotator's current label}, reviews left out."""
        result: dict[str, dict[str, Any]] = {}
        for item, entries in self.history.items():
            for entry in entries:
                if entry.get("role") != "review":
                    result.setdefault(item, {})[entry["annotator"]] = _value(entry)
        return result


def _value(record: Mapping[str, Any]) -> Any:
    return record["label"] if "label" in record else [tuple(s) for s in record["spans"]]


class LabelJournal:
    """An append-only JSONL file of labels, opened for one process or several.

    Each :meth:`label` or :meth:`undo` writes one line under an exclusive ``flock`` (two
    processes never interleave) and ``fsync``s it before returning.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.state = LabelState()
        self.skipped_torn_line = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with self._locked() as handle:
            self._drop_torn_tail(handle)
            self._offset = 0
            for record in self._records(handle):
                self.state.apply(record)
        if new:  # the file's name must survive a crash too, not only its content
            _fsync_folder(self.path.parent)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Any]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _drop_torn_tail(self, handle: Any) -> None:
        """Cut a last line that a crash left half-written: it was never acknowledged."""
        handle.seek(0)
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)
            handle.flush()
            os.fsync(handle.fileno())
            self.skipped_torn_line = True

    def _records(self, handle: Any, start: int = 0) -> Iterator[dict[str, Any]]:
        """The records from byte ``start`` on; ``self._offset`` ends past the last one."""
        handle.seek(start)
        for number, line in enumerate(iter(handle.readline, b""), 1):
            self._offset = handle.tell()
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or "item" not in record:
                    raise ValueError
            except ValueError:
                raise UserError(
                    f"label journal {self.path} line {number} is not a label record; "
                    "remove that line or restore the journal from a copy"
                ) from None
            yield record

    def _append(self, record: dict[str, Any]) -> dict[str, Any]:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._locked() as handle:
            # another process may have written since we last read: catch up first
            for other in self._records(handle, self._offset):
                self.state.apply(other)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
            self._offset = handle.seek(0, os.SEEK_END)
        self.state.apply(record)
        return record

    def label(
        self,
        item: str,
        label: str | None = None,
        spans: list[Span] | None = None,
        annotator: str = "me",
        note: str = "",
        role: str = "label",
        text: str | None = None,
    ) -> dict[str, Any]:
        """Record a class ``label`` (or entity ``spans``) for ``item``; durable on return.

        ``role`` is ``label``, or ``review`` for a reviewer's decision on a disagreement
        (which then wins over the annotators' labels). ``text`` is kept with the label when
        the texts live elsewhere (a Label Studio project), so the journal alone can train.
        """
        if (label is None) == (spans is None):
            raise ValueError("give exactly one of label and spans")
        record: dict[str, Any] = {"action": "label", "item": str(item), "annotator": annotator,
                                  "time": _now()}  # fmt: skip
        if label is not None:
            record["label"] = label
        else:
            record["spans"] = [[int(s), int(e), str(t)] for s, e, t in spans or []]
        if note:
            record["note"] = note
        if role != "label":
            record["role"] = role
        if text is not None:
            record["text"] = text
        return self._append(record)

    def skip(self, item: str, annotator: str = "me", note: str = "") -> dict[str, Any]:
        """Record that ``annotator`` passed over ``item``: it is not offered to them again."""
        record = {"action": "skip", "item": str(item), "annotator": annotator, "time": _now()}
        if note:
            record["note"] = note
        return self._append(record)

    def undo(self, annotator: str = "me", item: str | None = None) -> dict[str, Any]:
        """Take back ``annotator``'s latest label of ``item`` (default: their latest label).

        Raises:
            UserError: when the annotator has nothing to undo.
        """
        done = self.state.last_of.get(annotator, [])
        if item is None:
            if not done:
                raise UserError(f"{annotator} has no label to undo in {self.path}")
            item = done[-1]
        elif str(item) not in done:
            raise UserError(f"{annotator} has not labelled item {item} in {self.path}")
        return self._append({"action": "undo", "item": str(item), "annotator": annotator,
                             "time": _now()})  # fmt: skip

    @property
    def read_up_to(self) -> int:
        """The journal's bytes this object has read or written: less than the file's size
        once another process appended."""
        return self._offset

    def labels(self) -> dict[str, Any]:
        """item -> current label, as replaying the journal gives it."""
        return self.state.labels()

    def records(self) -> list[dict[str, Any]]:
        """Every line of the journal, in order."""
        with self._locked() as handle:
            offset = self._offset
            records = list(self._records(handle))
            self._offset = offset
            return records


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_labelled(path: Path, texts: Mapping[str, str], labels: Mapping[str, Any]) -> int:
    """Rewrite the consolidated labelled file (CSV, or JSONL by extension) atomically.

    Returns:
        How many rows it holds (labelled items whose text is known).
    """
    if any(not isinstance(label, str) for label in labels.values()):
        return _write_entities(path, texts, labels)
    rows = [{"id": item, "text": texts[item], "label": label}
            for item, label in labels.items() if item in texts]  # fmt: skip
    if path.suffix.lower() in (".jsonl", ".json"):
        write_jsonl(path, rows)
    else:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=["id", "text", "label"])
        write_text(path, frame.to_csv(index=False))
    return len(rows)


def _write_entities(path: Path, texts: Mapping[str, str], labels: Mapping[str, Any]) -> int:
    """Entity labels as JSONL that ``task: token-classification`` trains on: one character a
    token, BIO tags, and the spans themselves."""
    from tunelab.labelling.entities import spans_to_tags

    if path.suffix.lower() != ".jsonl":
        raise UserError(f"{path}: entity labels are written as JSONL (tokens and BIO tags for "
                        "token-classification); give a .jsonl file with --out")  # fmt: skip
    rows = []
    for item, spans in labels.items():
        if item in texts and not isinstance(spans, str):
            text = texts[item]
            rows.append({"id": item, "text": text, "tokens": list(text),
                         "tags": spans_to_tags(len(text), spans),
                         "spans": [list(span) for span in spans]})  # fmt: skip
    write_jsonl(path, rows)
    return len(rows)

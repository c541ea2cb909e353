"""Label Studio and doccano files for text classification, out and in.

- Label Studio: a JSON list of tasks ``{"id", "data": {"text"}, "annotations": [{"result":
  [{"type": "choices", "value": {"choices": [label]}, ...}]}], "predictions": [...]}``.
- doccano: JSONL, one ``{"id", "text", "label": [label, ...]}`` a line.

Importing another task type (entity spans where classes are expected) stops with one sentence
naming the file and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.outputs import write_json, write_jsonl


def _choices(label: str, origin: str) -> list[dict[str, Any]]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "origin": origin,
             "value": {"choices": [label]}}]  # fmt: skip


def export_label_studio(
    path: Path,
    texts: Mapping[str, str],
    labels: Mapping[str, Mapping[str, str]],
    predictions: Mapping[str, tuple[str, float]] | None = None,
    model_version: str = "tunelab",
) -> int:
    """Write Label Studio tasks: one per text, an annotation per annotator's label, and the
    model's prediction (label, score) where given. Returns the number of tasks."""
    tasks = []
    for number, (item, text) in enumerate(texts.items(), 1):
        task: dict[str, Any] = {"id": number, "data": {"text": text, "tunelab_id": item},
                                "annotations": []}  # fmt: skip
        for annotator, label in (labels.get(item) or {}).items():
            task["annotations"].append({"completed_by": annotator,
                                        "result": _choices(str(label), "manual")})  # fmt: skip
        if predictions and item in predictions:
            label, score = predictions[item]
            task["predictions"] = [{"model_version": model_version, "score": round(score, 4),
                                    "result": _choices(label, "prediction")}]  # fmt: skip
        tasks.append(task)
    write_json(path, tasks)
    return len(tasks)


def export_doccano(path: Path, texts: Mapping[str, str], labels: Mapping[str, str]) -> int:
    """Write doccano text-classification JSONL (labelled texts only). Returns the rows."""
    rows = [{"id": item, "text": texts[item], "label": [str(label)]}
            for item, label in labels.items() if item in texts]  # fmt: skip
    write_jsonl(path, rows)
    return len(rows)


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise UserError(f"{path} does not exist; check the path")
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise UserError(f"{path} is empty; export the project again")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not JSON (line {exc.lineno}): {exc.msg}") from None


def import_label_studio(path: Path) -> list[dict[str, Any]]:
    """Read a Label Studio JSON export of a text-classification project.

    Returns:
        One row per annotation: ``{"id", "text", "label", "annotator"}`` (tasks without an
        annotation give one row with ``label`` None).

    Raises:
        UserError: for an empty or non-JSON file, or annotations of another type.
    """
    tasks = _read_json(path)
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "data" in t for t in tasks):
        raise UserError(
            f"{path} is not a Label Studio export (a JSON list of tasks with 'data'); export "
            "the project as JSON from Label Studio"
        )
    rows = []
    for number, task in enumerate(tasks, 1):
        data = task["data"]
        text = data.get("text")
        if text is None:  # the labelling config may name the field otherwise: the first string
            text = next((v for v in data.values() if isinstance(v, str)), None)
        item = str(data.get("tunelab_id", task.get("id", number)))
        labelled = False
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            for result in annotation.get("result") or []:
                kind = result.get("type")
                if kind != "choices":
                    raise UserError(
                        f"{path} task {task.get('id', number)} has Label Studio annotations of "
                        f"type {kind!r}, but tunelab label imports text classification "
                        "('choices'); export a classification project, or convert entity "
                        "spans with tunelab's token-classification data instead"
                    )
                annotator = annotation.get("completed_by", "label-studio")
                if isinstance(annotator, dict):
                    annotator = annotator.get("email", annotator.get("id", "label-studio"))
                for label in result["value"]["choices"]:
                    rows.append({"id": item, "text": text, "label": label,
                                 "annotator": str(annotator)})  # fmt: skip
                    labelled = True
        if not labelled:
            rows.append({"id": item, "text": text, "label": None, "annotator": None})
    if not rows:
        raise UserError(f"{path} holds no tasks; export the project again")
    return rows


def import_doccano(path: Path) -> list[dict[str, Any]]:
    """Read doccano text-classification JSONL: rows ``{"id", "text", "label", "annotator"}``,
    one per label (a text without labels gives one row with ``label`` None).

    Raises:
        UserError: for an empty file, a bad line, or sequence-labelling spans.
    """
    if not path.exists():
        raise UserError(f"{path} does not exist; check the path")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{path} line {number} is not JSON; doccano exports JSONL") from None
        if not isinstance(record, dict) or "text" not in record:
            raise UserError(f"{path} line {number} has no 'text'; export as doccano JSONL")
        labels = record.get("label", record.get("labels", [])) or []
        if isinstance(labels, str):
            labels = [labels]
        item = str(record.get("id", number))
        for label in labels:
            if not isinstance(label, str):
                raise UserError(
                    f"{path} line {number} has span labels ({json.dumps(label)}), but tunelab "
                    "label imports text classification; export a text-classification project "
                    "from doccano"
                )
            rows.append({"id": item, "text": record["text"], "label": label,
                         "annotator": str(record.get("user", "doccano"))})  # fmt: skip
        if not labels:
            rows.append({"id": item, "text": record["text"], "label": None, "annotator": None})
    if not rows:
        raise UserError(f"{path} is empty; export the project again")
    return rows

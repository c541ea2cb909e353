"""tunelab as a Label Studio ML backend: /setup, /predict, /webhook as Label Studio sends them
(label-studio-ml-backend's protocol), every annotation journalled, the model rebuilt from the
journal after a restart, and one line for a project it cannot serve."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tunelab.labelling.studio_backend import StudioBackend, create_backend_app

CONFIG = """<View>
  <Text name="text" value="$review"/>
  <Choices name="sentiment" toName="text" choice="single" showInLine="true">
    <Choice value="pos"/>
    <Choice value="neg"/>
  </Choices>
</View>"""
NER = """<View><Labels name="label" toName="text"><Label value="PER"/></Labels>
<Text name="text" value="$text"/></View>"""
GOOD = ["质量很好", "物流很快", "非常满意", "值得购买", "服务周到", "包装精美"]
BAD = ["质量太差", "物流很慢", "非常失望", "不值这个价", "服务恶劣", "包装破损"]


def annotation_event(
    task: int, text: str, label: str, user: int, action: str = "ANNOTATION_CREATED"
) -> dict[str, Any]:
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
               "value": {"choices": [label]}, "origin": "manual"}]  # fmt: skip
    return {"action": action, "project": {"id": 3, "label_config": CONFIG},
            "task": {"id": task, "data": {"review": text}},
            "annotation": {"id": 100 + task, "completed_by": user, "result": result,
                           "was_cancelled": False}}  # fmt: skip


def client(folder: Path, **options: Any) -> TestClient:
    auth = options.pop("auth", None)
    return TestClient(create_backend_app(StudioBackend(folder, **options), auth))


def predict(backend: TestClient, texts: list[str]) -> list[dict[str, Any]]:
    tasks = [{"id": 900 + n, "data": {"review": text}} for n, text in enumerate(texts)]
    body = {"tasks": tasks, "label_config": CONFIG, "project": "3.1712345678",
            "params": {"context": {}}}  # fmt: skip
    answer = backend.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_learns_from_annotations_and_predicts_choices(tmp_path: Path) -> None:
    backend = client(tmp_path, retrain_every=5)
    assert backend.get("/health").json() == {"status": "UP", "model_class": "tunelab"}
    setup = backend.post("/setup", json={"project": "3.1712345678", "schema": CONFIG})
    assert setup.json() == {"model_version": "tunelab-untrained"}
    assert predict(backend, ["质量很好"]) == []  # no model before two classes have labels

    task = 0
    for n in range(12):
        for words, label in ((GOOD, "pos"), (BAD, "neg")):
            text = "，".join(words[(n + k) % 6] for k in range(2)) + f"{n}"
            answer = backend.post("/webhook", json=annotation_event(task, text, label, 1 + n % 2))
            assert answer.status_code == 201 and answer.json()["status"] == "ok"
            task += 1
    start = {"action": "START_TRAINING", "project": {"id": 3, "label_config": CONFIG}}
    trained = backend.post("/webhook", json=start)
    assert trained.json()["result"] == {"labels": 24, "model_version": "tunelab-24"}

    results = predict(backend, ["服务周到，值得购买！", "服务恶劣，非常失望。"])
    assert [r["result"][0]["value"]["choices"] for r in results] == [["pos"], ["neg"]]
    for r in results:
        assert r["result"][0] | {"value": None} == {"from_name": "sentiment", "to_name": "text",
                                                    "type": "choices", "value": None}  # fmt: skip
        assert 0.5 < r["score"] <= 1 and r["model_version"] == "tunelab-24"

    lines = (tmp_path / "project-3.journal.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 24 and records[0]["annotator"] == "label-studio:1"
    assert records[1]["text"].endswith("0") and records[1]["label"] == "neg"

    # a restarted backend rebuilds the model from the journal alone
    again = client(tmp_path)
    assert predict(again, ["服务周到，值得购买！"])[0]["model_version"] == "tunelab-24"
    # a deleted annotation is taken back from the journal
    deleted = annotation_event(0, "", "pos", 1, action="ANNOTATION_DELETED")
    assert again.post("/webhook", json=deleted).status_code == 201
    assert json.loads((tmp_path / "project-3.journal.jsonl").read_text().splitlines()[-1])[
        "action"] == "undo"  # fmt: skip
    assert again.post("/webhook", json=start).json()["result"]["labels"] == 23


def test_what_it_cannot_serve_is_one_line(tmp_path: Path) -> None:
    backend = client(tmp_path)
    ner = backend.post("/setup", json={"project": "4.1", "schema": NER})
    assert ner.status_code == 400
    assert ner.json() == {"error": "error: the Label Studio label config has <Labels> but no "
                          "<Choices>; tunelab's backend suggests text-classification choices, "
                          "so connect it to a text classification project"}  # fmt: skip
    multiple = CONFIG.replace('choice="single"', 'choice="multiple"')
    answer = backend.post("/setup", json={"project": "4.1", "schema": multiple})
    assert answer.status_code == 400 and 'set choice=\\"single\\"' in answer.text
    broken = backend.post("/setup", json={"project": "4.1", "schema": "<View><Choices"})
    assert broken.status_code == 400 and "is not valid XML" in broken.json()["error"]

    for n, label in enumerate(["pos", "neg"]):
        backend.post("/webhook", json=annotation_event(n, GOOD[n] if n == 0 else BAD[n], label, 1))
    wrong = backend.post("/predict", json={"tasks": [{"id": 7, "data": {"text": "好"}}],
                                           "label_config": CONFIG, "project": "3.1"})  # fmt: skip
    assert wrong.status_code == 400 and wrong.json()["error"] == (
        "error: Label Studio task 7 has no data field 'review', which the label config's "
        "<Text value=\"$review\"> reads; import tasks with that field")  # fmt: skip
    other = backend.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 3}})
    assert other.status_code == 200 and other.json() == {"status": "Unknown event"}


def test_basic_auth_when_asked(tmp_path: Path) -> None:
    backend = client(tmp_path, auth=("ls", "secret"))
    assert backend.get("/health").status_code == 401
    token = base64.b64encode(b"ls:secret").decode()
    assert backend.get("/health", headers={"Authorization": f"Basic {token}"}).status_code == 200
    wrong = base64.b64encode(b"ls:guess").decode()
    assert backend.get("/health", headers={"Authorization": f"Basic {wrong}"}).status_code == 401

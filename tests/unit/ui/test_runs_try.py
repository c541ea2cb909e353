"""The Runs and Try pages' answers: `tunelab runs` of the workspace, comparisons with curves,
and predictions, explanations, chat and batch files that match the CLI's."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

import tunelab
from tests.conftest import make_reviews
from tests.unit.evaluation import synthetic_runs
from tests.unit.serving.conftest import save_model

TEXTS = ["很好喜欢", "很差失望，退货"]


def two_runs(workspace):
    for name, rate in (("a", 1e-4), ("b", 5e-4)):
        folder = synthetic_runs.classification_run(workspace / "runs" / name)
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["training"] = {"learning_rate": rate}
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return ["runs/a", "runs/b"]


def test_runs_list_the_workspace_with_their_jobs(client, workspace):
    two_runs(workspace)
    (workspace / "runs" / "c").mkdir()
    (workspace / "runs" / "c" / "config.yaml").write_text("task: text-classification\n")
    runs = client.get("/api/runs").json()
    assert {r["path"]: r["status"] for r in runs} == {
        "runs/a": "finished", "runs/b": "finished", "runs/c": "incomplete"}  # fmt: skip
    a = next(r for r in runs if r["path"] == "runs/a")
    assert (a["metric"], a["split"], a["value"]) == ("f1_macro", "test", 0.65)
    assert a["report"] is None  # the synthetic run has no report.html


def test_compare_two_runs_config_metrics_and_curves(client, workspace):
    paths = two_runs(workspace)
    found = client.get("/api/runs/compare", params={"run": paths}).json()
    assert found["runs"] == ["a", "b"] and found["paths"] == paths
    assert found["config"] == {"training.learning_rate": [1e-4, 5e-4]}
    assert found["metrics"]["test.f1_macro"] == [0.65, 0.65]
    assert found["command"] == "tunelab runs compare runs/a runs/b"
    curve = found["curves"][0]
    assert curve["loss"][0][0] == 10 and len(curve["loss"]) == 10
    assert [p[0] for p in curve["eval"]["f1_macro"]] == [50, 100]
    one = client.get("/api/runs/compare", params={"run": ["runs/a"]})
    assert one.status_code == 400 and "at least two run folders" in one.json()["error"]
    outside = client.get("/api/runs/compare", params={"run": ["runs/a", "../x"]})
    assert outside.status_code == 400 and outside.json()["field"] == "run"


@pytest.fixture
def classifier(workspace, tiny_bert):
    from transformers import AutoModelForSequenceClassification

    from tunelab.tasks.text_classification import TextClassification

    labels = ["negative", "positive"]
    task = TextClassification(problem_type="single_label", labels=labels)
    save_model(tiny_bert, workspace / "runs" / "clf", AutoModelForSequenceClassification, task,
               labels)  # fmt: skip
    return "runs/clf"


def test_try_predicts_as_tunelab_predict(client, workspace, classifier):
    facts = client.get("/api/try/model", params={"run": classifier}).json()
    assert facts == {"run": classifier, "task": "text-classification",
                     "labels": ["negative", "positive"], "explains": True, "inputs": "text",
                     "chat": False, "pairs": False}  # fmt: skip
    found = client.post("/api/try/predict", json={"run": classifier, "texts": TEXTS}).json()
    assert found["records"] == tunelab.predict(workspace / classifier, texts=TEXTS)
    assert found["command"] == (
        f"tunelab predict {classifier} --text '很好喜欢' --text '很差失望，退货'"
    )
    empty = client.post("/api/try/predict", json={"run": classifier, "texts": [" "]})
    assert empty.json() == {"error": "error: give at least one text, one per line",
                            "field": "texts"}  # fmt: skip
    missing = client.post("/api/try/predict", json={"run": "runs/none", "texts": TEXTS})
    assert missing.json()["field"] == "run"


def test_try_explains_with_the_explain_pages_html(client, classifier):
    pytest.importorskip("captum")
    found = client.post("/api/try/explain", json={"run": classifier, "texts": TEXTS[:1]}).json()
    assert found["command"] == f"tunelab explain {classifier} --text '很好喜欢'"
    assert found["html"].startswith('<div class="tl-ex">') and "<script" not in found["html"]
    assert len(found["explanations"][0]["attributions"]) == len(
        found["explanations"][0]["tokens"])  # fmt: skip


def test_try_predicts_and_explains_the_workspaces_images(client, workspace, tiny_vit):
    """An image model on the Try page: each line names an image of the workspace, predicted
    as tunelab predict does and explained by occlusion; a path outside is refused."""
    from tests.conftest import make_colour_images
    from tests.unit.tasks.test_image_classification import run_config

    make_colour_images(workspace / "images", per_class=12)
    tunelab.train(run_config(tiny_vit, workspace / "images", workspace / "runs" / "img"))
    facts = client.get("/api/try/model", params={"run": "runs/img"}).json()
    assert facts["inputs"] == "image" and facts["explains"] is True
    photo = "images/red/red-0.png"
    found = client.post("/api/try/predict", json={"run": "runs/img", "texts": [photo]}).json()
    assert found["records"] == tunelab.predict(workspace / "runs" / "img",
                                               texts=[str(workspace / photo)])  # fmt: skip
    assert found["command"] == f"tunelab predict runs/img --text {photo}"
    explained = client.post("/api/try/explain", json={"run": "runs/img", "texts": [photo]}).json()
    assert explained["explanations"][0]["kind"] == "image"
    assert explained["html"].count("<rect") == 64 and "<script" not in explained["html"]
    outside = client.post("/api/try/predict", json={"run": "runs/img", "texts": ["/etc/hosts"]})
    assert outside.json()["field"] == "texts"
    assert "is not a path inside the workspace" in outside.json()["error"]


def test_try_predicts_a_file_to_download(client, workspace, classifier, monkeypatch, capsys):
    make_reviews(12, seed=4).to_csv(workspace / "uploads" / "new.csv", index=False)
    found = client.post("/api/try/batch", json={"run": classifier, "path": "uploads/new.csv"})
    found = found.json()
    assert found["rows"] == 12 and found["output"] == "predictions/clf-new.csv"
    written = pd.read_csv(workspace / found["output"])
    assert found["command"] == (
        "tunelab predict runs/clf --input uploads/new.csv --output predictions/clf-new.csv"
    )
    monkeypatch.chdir(workspace)
    (workspace / found["output"]).unlink()
    from tunelab import cli

    monkeypatch.setattr("sys.argv", found["command"].split())
    with pytest.raises(SystemExit):
        cli.main()
    assert pd.read_csv(workspace / found["output"]).equals(written)
    assert client.get(f"/files/{found['output']}?download=true").status_code == 200


def test_try_chats_with_a_causal_model(client, workspace, tiny_llama):
    shutil.copytree(tiny_llama, workspace / "runs" / "chat" / "model")
    facts = client.get("/api/try/model", params={"run": "runs/chat"}).json()
    assert facts["chat"] is True and facts["explains"] is False
    messages = [{"role": "user", "content": "red cat"}]
    found = client.post("/api/try/chat", json={"run": "runs/chat", "messages": messages}).json()
    assert found["command"] == "tunelab chat runs/chat"
    from tunelab.chat import load_chat_model, reply

    model, tokenizer, stop = load_chat_model(workspace / "runs" / "chat")
    assert found["answer"] == reply(model, tokenizer, stop, messages, 128)
    bad = client.post("/api/try/chat", json={"run": "runs/chat", "messages": []})
    assert bad.json()["field"] == "messages"
    assert json.dumps(found)  # plain JSON

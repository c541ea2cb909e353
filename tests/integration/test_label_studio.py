"""tunelab's ML backend driven by a real Label Studio: connect, annotate, train, predict.

Label Studio is a large Django application, so it is not a test dependency: install it
anywhere (``python -m venv /opt/ls && /opt/ls/bin/pip install label-studio``) and point
``TUNELAB_LABEL_STUDIO`` at its ``label-studio`` executable; without it this test skips.
Checked with Label Studio 1.23.2.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXECUTABLE = os.environ.get("TUNELAB_LABEL_STUDIO", "")
pytestmark = pytest.mark.skipif(
    not (EXECUTABLE and Path(EXECUTABLE).is_file()),
    reason="set TUNELAB_LABEL_STUDIO to a label-studio executable to run this test",
)
TOKEN = "0123456789abcdef0123456789abcdef01234567"
CONFIG = """<View>
  <Text name="text" value="$review"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="positive"/><Choice value="negative"/>
  </Choices>
</View>"""
GOOD = ["质量很好，物流很快", "非常满意，值得购买", "服务周到，包装精美", "性价比高，推荐给朋友",
        "好用，满意", "很棒，会回购"]  # fmt: skip
BAD = ["质量太差，物流很慢", "非常失望，不值这个价", "服务恶劣，包装破损", "退货麻烦，再也不买",
       "很差，失望", "难用，后悔"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, seconds: float) -> None:
    import httpx

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AssertionError(f"{url} did not answer within {seconds:.0f} s")


def test_label_studio_annotations_train_the_backend_and_get_its_predictions(tmp_path):
    import httpx

    from tunelab.labelling.journal import LabelJournal

    studio_port, backend_port = free_port(), free_port()
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(tmp_path / "studio"),
           "LABEL_STUDIO_USERNAME": "a@tunelab.test", "LABEL_STUDIO_PASSWORD": "tunelab-pass",
           "LABEL_STUDIO_USER_TOKEN": TOKEN, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           # the backend listens on loopback, which Label Studio refuses by default (SSRF)
           "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false"}  # fmt: skip
    studio = subprocess.Popen([EXECUTABLE, "start", "--no-browser", "--port", str(studio_port)],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    journals = tmp_path / "journals"
    backend = subprocess.Popen([sys.executable, "-m", "tunelab.cli", "label", "backend",
                                "--journal-dir", str(journals), "--port", str(backend_port),
                                "--retrain-every", "4"], cwd=tmp_path)  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{backend_port}/health", 60)
        wait_for(f"http://127.0.0.1:{studio_port}/health", 300)
        api = httpx.Client(base_url=f"http://127.0.0.1:{studio_port}", timeout=120,
                           headers={"Authorization": f"Token {TOKEN}"})  # fmt: skip
        project = api.post("/api/projects", json={"title": "tunelab", "label_config": CONFIG})
        pid = project.json()["id"]
        tasks = [{"review": t} for pair in zip(GOOD, BAD, strict=True) for t in pair]
        tasks += [{"review": "包装精美，非常满意！"}, {"review": "包装破损，非常失望！"}]
        assert api.post(f"/api/projects/{pid}/import", json=tasks).status_code == 201
        connected = api.post("/api/ml", json={"url": f"http://127.0.0.1:{backend_port}",
                                              "project": pid, "title": "tunelab"})  # fmt: skip
        assert connected.status_code == 201, connected.text
        assert connected.json()["model_version"] == "tunelab-untrained"  # its /setup answer
        api.patch(f"/api/projects/{pid}", json={"start_training_on_annotation_update": True})
        found = api.get("/api/tasks", params={"project": pid, "page_size": 100}).json()["tasks"]
        texts = {task["id"]: task["data"]["review"] for task in found}
        ids = sorted(texts)
        for task in ids[:12]:  # each annotation reaches the backend through /webhook
            label = "positive" if texts[task] in GOOD else "negative"
            result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                       "value": {"choices": [label]}}]  # fmt: skip
            assert api.post(f"/api/tasks/{task}/annotations",
                            json={"result": result}).status_code == 201  # fmt: skip
        ml = connected.json()["id"]
        assert api.post(f"/api/ml/{ml}/train", json={}).status_code == 200
        journal = LabelJournal(journals / f"project-{pid}.journal.jsonl")
        assert len(journal.labels()) == 12
        assert {r["annotator"] for r in journal.records()} == {"label-studio:1"}
        action = {"id": "retrieve_tasks_predictions", "project": pid}
        chosen = {"selectedItems": {"all": False, "included": ids[12:]}}
        retrieved = api.post("/api/dm/actions", params=action, json=chosen)
        assert retrieved.status_code == 200, retrieved.text
        for task, expected in zip(ids[12:], ["positive", "negative"], strict=True):
            [prediction] = api.get("/api/predictions", params={"task": task}).json()
            assert prediction["result"][0]["value"]["choices"] == [expected]
            assert prediction["model_version"] == "tunelab-12" and 0.5 < prediction["score"] <= 1
    finally:
        for process in (studio, backend):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

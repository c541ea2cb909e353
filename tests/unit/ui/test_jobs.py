"""Training jobs: state in SQLite that outlives the server, workers that die noticed, crashes
shown as the CLI's one line, cancel and resume."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.unit.ui.conftest import cli_line, workbench
from tunelab.ui.jobs import VANISHED, JobStore, Scheduler
from tunelab.ui.worker import run_job

NOT_A_PROCESS = 2**22 + 4321  # above Linux's largest process number


def job_values(uploaded: str, output: str = "runs/first", **more: str) -> dict:
    return {"values": {"data.train": uploaded, "output": output, "model.name": "scratch-bert",
                       "training.max_steps": "2", **more}}  # fmt: skip


def test_jobs_survive_a_restart_of_the_server(workspace, uploaded, client):
    started = client.post("/api/jobs", json=job_values(uploaded))
    assert started.status_code == 200, started.text
    job = started.json()
    assert job["status"] == "queued" and job["output"] == "runs/first"
    assert job["command"] == ("tunelab train --output runs/first --data uploads/reviews.csv "
                              "--model scratch-bert --set training.max_steps=2")  # fmt: skip
    with workbench(workspace) as again:  # a new server process reads the same database
        assert [j["id"] for j in again.get("/api/jobs").json()] == [job["id"]]
        assert again.get(f"/api/jobs/{job['id']}").json()["command"] == job["command"]
        runs = again.get("/api/runs").json()
        assert [(r["path"], r["status"], r["job"]) for r in runs] == [
            ("runs/first", "queued", job["id"])]  # fmt: skip


def test_bad_settings_are_refused_before_a_job_is_queued(client, uploaded, workspace):
    answer = client.post("/api/jobs", json=job_values(uploaded, **{"data.text_column": "body"}))
    assert answer.status_code == 400 and answer.json()["field"] == "data.text_column"
    (workspace / "runs" / "done" / "model").mkdir(parents=True)
    taken = client.post("/api/jobs", json=job_values(uploaded, output="runs/done"))
    assert taken.json() == {
        "error": "error: run folder runs/done already holds a run; pass --resume to continue "
        "it, --overwrite to replace it, or choose another --output",
        "field": "output",
    }
    replaced = client.post("/api/jobs", json={**job_values(uploaded, output="runs/done"),
                                              "overwrite": True})  # fmt: skip
    assert replaced.status_code == 200 and replaced.json()["command"].endswith(" --overwrite")
    assert client.get("/api/jobs").json()[0]["id"] == replaced.json()["id"]


def test_a_worker_that_vanished_is_marked_interrupted_and_resumable(workspace):
    store = JobStore(workspace / "jobs.db")
    scheduler = Scheduler(store, workspace, max_running=0)  # starts nothing
    gone = store.add("runs/a", [], "tunelab train", False)
    reused = store.add("runs/b", [], "tunelab train", False)
    store.update(gone, status="running", pid=NOT_A_PROCESS)
    store.update(reused, status="running", pid=os.getpid())  # alive, but no worker of it
    scheduler.tick()
    for job in (gone, reused):
        found = store.get(job)
        assert (found["status"], found["error"]) == ("interrupted", VANISHED)
        assert store.events(job)[-1]["kind"] == "end"
    assert scheduler.resume(gone)["status"] == "queued"
    assert store.get(gone)["resume"] is True


def test_cancel_a_queued_job_and_resume_it(client, uploaded):
    job = client.post("/api/jobs", json=job_values(uploaded)).json()
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["resumable"]
    resumed = client.post(f"/api/jobs/{job['id']}/resume").json()
    assert (resumed["status"], resumed["resume"]) == ("queued", True)
    again = client.post(f"/api/jobs/{job['id']}/resume")
    assert again.status_code == 409 and "only a cancelled, interrupted" in again.json()["error"]
    assert client.get("/api/jobs/999").status_code == 404


def test_a_crashed_job_shows_the_clis_one_line(workspace, uploaded, client, monkeypatch, capsys):
    values = job_values(uploaded, **{"data.validation": "uploads/missing.csv"})
    values["values"].pop("training.max_steps")
    refused = client.post("/api/jobs", json=values)  # the page refuses it before queueing
    assert refused.status_code == 400
    store = JobStore(workspace / ".tunelab-ui" / "jobs.db")
    overrides = ['data.train="uploads/reviews.csv"', 'data.validation="uploads/missing.csv"']
    job = store.add("runs/x", overrides, "tunelab train", False)
    monkeypatch.chdir(workspace)  # where the worker process runs
    assert run_job(store, job) == 2
    failed = store.get(job)
    line = cli_line(["train", "--data", uploaded, "--validation", "uploads/missing.csv"],
                    monkeypatch, capsys)  # fmt: skip
    assert (failed["status"], failed["error"]) == ("failed", line)
    assert refused.json()["error"] == line


def test_a_bug_in_a_job_shows_the_internal_error_line(workspace, monkeypatch):
    store = JobStore(workspace / "jobs.db")
    job = store.add("runs/x", [], "tunelab train", False)

    def broken(*args, **kwargs):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr("tunelab.api.train", broken)
    assert run_job(store, job) == 1
    error = store.get(job)["error"]
    assert error.startswith("internal error: RuntimeError at test_jobs.py:")
    assert "something broke; this is a bug in tunelab" in error


def test_the_event_stream_replays_a_job_and_ends(client, workspace):
    store = JobStore(workspace / ".tunelab-ui" / "jobs.db")
    job = store.add("runs/x", [], "tunelab train", False)
    store.add_event(job, "progress", {"step": 3, "max_steps": 6})
    store.add_event(job, "log", {"step": 3, "loss": 0.5})
    store.end(job, "failed", "error: something")
    with client.stream("GET", f"/api/jobs/{job}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    blocks = [b for b in text.split("\n\n") if b.startswith("id:") or b.startswith("event:")]
    kinds = [b.split("event: ")[1].split("\n")[0] for b in blocks]
    assert kinds == ["progress", "log", "end", "done"]
    assert json.loads(blocks[1].split("data: ")[1])["loss"] == 0.5
    with client.stream("GET", f"/api/jobs/{job}/events", headers={"Last-Event-ID": "2"}) as again:
        assert "event: progress" not in "".join(again.iter_text())  # a reconnect resumes


def test_the_log_tail_shows_a_progress_bar_once(client, workspace):
    store = JobStore(workspace / ".tunelab-ui" / "jobs.db")
    job = store.add("runs/x", [], "tunelab train", False)
    log = workspace / ".tunelab-ui" / "jobs" / f"{job}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("tunelab: INFO: training\n\r 10%|#  | 1/10\r 20%|##  | 2/10\x1b[A\n"
                   "{'loss': 0.5}\n 30%|###\n 40%|####\n")  # fmt: skip
    lines = client.get(f"/api/jobs/{job}/log").json()["lines"]
    assert lines == ["tunelab: INFO: training", " 20%|##  | 2/10", "{'loss': 0.5}", " 40%|####"]


@pytest.mark.slow
def test_a_worker_process_records_its_failure(workspace, uploaded, client, monkeypatch, capsys):
    """A real worker process (the scheduler's), for a model that does not exist."""
    with workbench(workspace, run_jobs=True) as running:
        values = job_values(uploaded, **{"model.name": "no-such-org/no-such-model"})
        job = running.post("/api/jobs", json=values).json()
        deadline = time.time() + 240
        while running.get(f"/api/jobs/{job['id']}").json()["status"] in ("queued", "running"):
            assert time.time() < deadline, "the worker did not end"
            time.sleep(0.5)
        failed = running.get(f"/api/jobs/{job['id']}").json()
    monkeypatch.chdir(workspace)
    line = cli_line(["train", "--data", uploaded, "--output", "runs/first", "--model",
                     "no-such-org/no-such-model", "--set", "training.max_steps=2"],
                    monkeypatch, capsys)  # fmt: skip
    assert (failed["status"], failed["error"]) == ("failed", line)
    log = client.get(f"/api/jobs/{job['id']}/log").json()["lines"]
    assert any("tunelab train --output runs/first" in line for line in log)

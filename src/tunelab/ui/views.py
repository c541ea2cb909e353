"""What the workbench shows of jobs and run folders: the checks made before a job is queued,
a job as the Run page sees it, the runs list with the jobs behind it, a run's curves and a
job's log as a terminal would show it."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from tunelab.runs import list_runs
from tunelab.ui.form import WORKSPACE_PATHS
from tunelab.ui.jobs import JobStore
from tunelab.ui.workspace import Workspace

LOG_TAIL_BYTES = 64 * 1024
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROGRESS_BAR = re.compile(r"^\s*\d+%\|")


def dotted_value(config: Any, key: str) -> Any:
    node = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def preflight(ws: Workspace, config: Any, overwrite: bool) -> None:
    """The checks ``tunelab train`` makes before it loads a model, made now so the page shows
    their error before a job is queued: settings, the data files as the task reads them, and
    the run folder."""
    from tunelab.tasks import task_from_run_config
    from tunelab.training.finetune import check_run_settings, prepare_output
    from tunelab.training.prepare import read_splits

    for key in WORKSPACE_PATHS:
        value = dotted_value(config, key)
        if value is not None:
            ws.path(str(value), key)
    task = task_from_run_config(config)
    check_run_settings(config, task)
    placed = config.model_copy(deep=True)  # the workspace's files, whatever this server's cwd
    for split in ("train", "validation", "test"):
        value = getattr(placed.data, split)
        if value is not None:
            setattr(placed.data, split, ws.path(str(value), f"data.{split}"))
    read_splits(placed, task)
    if not overwrite:
        prepare_output(ws.path(str(config.output), "output"), resume=False, overwrite=False)


JOB_FIELDS = ("id", "output", "command", "status", "error", "created", "started", "ended", "resume")


def job_view(ws: Workspace, job: dict[str, Any] | None) -> dict[str, Any]:
    """A job as the pages show it: its state, and whether it can be resumed or has a report."""
    if job is None:
        return {}
    folder = ws.root / job["output"]
    finished = (folder / "metrics.json").is_file()
    report = finished and (folder / "report.html").is_file()
    return {
        **{k: job[k] for k in JOB_FIELDS},
        "report": f"/files/{job['output']}/report.html" if report else None,
        "checkpoint": _has_checkpoint(folder),
        "resumable": job["status"] in ("failed", "cancelled", "interrupted") and not finished,
    }


def _has_checkpoint(folder: Path) -> bool:
    checkpoints = folder / "checkpoints"
    return checkpoints.is_dir() and any(
        (c / "trainer_state.json").is_file() for c in checkpoints.glob("checkpoint-*")
    )


def runs_with_jobs(ws: Workspace, store: JobStore) -> list[dict[str, Any]]:
    """``tunelab runs`` of the workspace's runs/, with the state of the job behind each run
    (and the jobs that have no run folder yet: queued, or failed before they made one)."""
    records = list_runs(ws.runs)
    latest: dict[str, dict[str, Any]] = {}
    for each in store.all():  # newest first: the latest job of each folder wins
        latest.setdefault(each["output"], each)
    rows = []
    for record in records:
        path = ws.relative(Path(record["path"]))
        job = latest.pop(path, None)
        status = record["status"]  # finished (metrics.json is there) or incomplete
        if job is not None and status != "finished":
            status = job["status"]  # queued, running, failed, cancelled or interrupted
        rows.append({**record, "path": path, "status": status, "job": job and job["id"],
                     "error": job and job["error"],
                     "report": f"/files/{path}/report.html"
                     if (ws.root / path / "report.html").is_file() else None})  # fmt: skip
    for path, job in latest.items():
        rows.append({"name": Path(path).name, "path": path, "status": job["status"],
                     "job": job["id"], "error": job["error"], "task": None, "model": None,
                     "data": None, "metric": None, "value": None, "split": None,
                     "finished": None, "seconds": None, "report": None})  # fmt: skip
    return rows


def read_runs_quietly(ws: Workspace) -> None:
    with contextlib.suppress(Exception):  # a damaged run is reported when the page asks
        list_runs(ws.runs)


def curves(folder: Path) -> dict[str, Any]:
    """Training loss and evaluation series of a run, from its ``history.json``."""
    try:
        history = json.loads((folder / "history.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"loss": [], "eval": {}}
    loss = [[h["step"], h["loss"]] for h in history if "loss" in h and "step" in h]
    evaluations: dict[str, list[list[float]]] = {}
    for h in history:
        for key, value in h.items():
            if key.startswith("eval_") and isinstance(value, (int, float)) and "step" in h:
                if key.endswith(("_runtime", "_per_second")):
                    continue
                evaluations.setdefault(key[5:], []).append([h["step"], value])
    return {"loss": loss, "eval": evaluations}


def log_tail(path: Path, lines: int) -> list[str]:
    """The log's last lines, as a terminal would show them: a progress bar redrawn in place
    (carriage returns, cursor moves) keeps only its latest state."""
    if not path.is_file():
        return []
    with open(path, "rb") as handle:
        handle.seek(max(path.stat().st_size - LOG_TAIL_BYTES, 0))
        text = handle.read().decode("utf-8", errors="replace")
    shown: list[str] = []
    for line in TERMINAL_CODES.sub("", text).split("\n"):
        line = line.rsplit("\r", 1)[-1].rstrip() if line.strip("\r").strip() else ""
        if not line.strip():
            continue
        if shown and PROGRESS_BAR.match(line) and PROGRESS_BAR.match(shown[-1]):
            shown[-1] = line
        else:
            shown.append(line)
    return shown[-lines:]

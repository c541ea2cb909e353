"""Training jobs: their state in SQLite, and the worker processes that run them.

A job is one ``tunelab train`` with the overrides the Train page gave. The server queues it;
:class:`Scheduler` starts queued jobs as worker processes (:mod:`tunelab.ui.worker`), one at
a time by default. The worker writes its progress and its end into the same database, so the
state survives a page reload and a restart of ``tunelab ui``: a worker started by an earlier
server goes on and records its end, and one that died without a word is found at the next
look and marked ``interrupted`` (resumable from its last checkpoint).

States: ``queued`` -> ``running`` -> ``finished`` | ``failed`` (its one-line error) |
``cancelled`` (the Cancel button: the Ctrl-C path, which saves a checkpoint) |
``interrupted`` (the process vanished); the last three can be resumed (queued again with
``resume``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("tunelab")

QUEUED, RUNNING, FINISHED, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "finished", "failed", "cancelled", "interrupted",
)  # fmt: skip
ENDED = (FINISHED, FAILED, CANCELLED, INTERRUPTED)
RESUMABLE = (FAILED, CANCELLED, INTERRUPTED)
VANISHED = (
    "the training process ended without recording why (killed, or the machine went down); "
    "resume to continue from the last checkpoint"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    output TEXT NOT NULL,          -- the run folder, relative to the workspace
    overrides TEXT NOT NULL,       -- JSON list of the CLI's key=value overrides
    command TEXT NOT NULL,         -- the equivalent tunelab train command
    status TEXT NOT NULL,
    resume INTEGER NOT NULL DEFAULT 0,
    overwrite INTEGER NOT NULL DEFAULT 0,
    error TEXT,                    -- the one line the CLI would print
    pid INTEGER,
    created REAL NOT NULL,
    started REAL,
    ended REAL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job INTEGER NOT NULL,
    kind TEXT NOT NULL,            -- stage, start, progress, log, end
    data TEXT NOT NULL,            -- JSON
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_of_job ON events (job, seq);
"""


class JobStore:
    """The jobs database (one file; every call opens its own connection, so threads and
    processes share it safely; WAL lets the page read while a worker writes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    def add(self, output: str, overrides: list[str], command: str, overwrite: bool) -> int:
        """Queue a job; returns its id."""
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO jobs (output, overrides, command, status, overwrite, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (output, json.dumps(overrides), command, QUEUED, int(overwrite), time.time()),
            )
            return int(cursor.lastrowid or 0)

    def get(self, job: int) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job,)).fetchone()
        return _job(row) if row else None

    def all(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY id DESC").fetchall()
        return [_job(row) for row in rows]

    def with_status(self, *statuses: str) -> list[dict[str, Any]]:
        """The jobs in these states, oldest first."""
        marks = ", ".join("?" * len(statuses))
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY id", statuses
            ).fetchall()
        return [_job(row) for row in rows]

    def update(self, job: int, only_if: tuple[str, ...] = (), **values: Any) -> bool:
        """Set columns of a job; with ``only_if``, only while its status is one of those.

        Returns:
            Whether the job was changed.
        """
        names = ", ".join(f"{name} = ?" for name in values)
        query = f"UPDATE jobs SET {names} WHERE id = ?"
        arguments = [*values.values(), job]
        if only_if:
            query += f" AND status IN ({', '.join('?' * len(only_if))})"
            arguments += list(only_if)
        with self._connect() as db:
            return db.execute(query, arguments).rowcount > 0

    def end(self, job: int, status: str, error: str | None = None) -> None:
        """Record a job's end (the worker's last write), and an ``end`` event for the page."""
        self.update(job, status=status, error=error, ended=time.time())
        self.add_event(job, "end", {"status": status, "error": error})

    def add_event(self, job: int, kind: str, data: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO events (job, kind, data, time) VALUES (?, ?, ?, ?)",
                (job, kind, json.dumps(data, ensure_ascii=False), time.time()),
            )

    def events(self, job: int, after: int = 0) -> list[dict[str, Any]]:
        """The job's events after sequence number ``after``, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT seq, kind, data, time FROM events WHERE job = ? AND seq > ? ORDER BY seq",
                (job, after),
            ).fetchall()
        return [
            {"seq": r["seq"], "kind": r["kind"], "data": json.loads(r["data"]), "time": r["time"]}
            for r in rows
        ]


def _job(row: sqlite3.Row) -> dict[str, Any]:
    job = dict(row)
    job["overrides"] = json.loads(job["overrides"])
    job["resume"] = bool(job["resume"])
    job["overwrite"] = bool(job["overwrite"])
    return job


class Scheduler:
    """Starts queued jobs as worker processes and notices workers that died.

    Args:
        store: the jobs database.
        workspace: the folder the workers run in (their relative paths start there).
        max_running: jobs that train at once; more wait in the queue.
        poll_seconds: how often the queue and the workers are looked at.
    """

    def __init__(
        self, store: JobStore, workspace: Path, max_running: int = 1, poll_seconds: float = 0.5
    ) -> None:
        self.store = store
        self.workspace = Path(workspace)
        self.max_running = max_running
        self.poll_seconds = poll_seconds
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def log_path(self, job: int) -> Path:
        return self.store.path.parent / "jobs" / f"{job}.log"

    def start(self) -> None:
        """Look at the jobs now and then every ``poll_seconds`` in a background thread."""
        self.tick()
        self._thread = threading.Thread(target=self._loop, name="tunelab-ui-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop looking (running workers go on; a later server picks them up)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.tick()
            except Exception:  # a locked or damaged database must not end the loop
                log.exception("the workbench's job loop failed once; trying again")

    def tick(self) -> None:
        """Mark vanished workers, then start queued jobs while there is room."""
        with self._lock:
            running = self.store.with_status(RUNNING)
            for job in running:
                if not self._alive(job):
                    self._settle(job)
            room = self.max_running - len(self.store.with_status(RUNNING))
            for job in self.store.with_status(QUEUED)[: max(room, 0)]:
                self._launch(job)

    def _settle(self, job: dict[str, Any]) -> None:
        """A worker that is gone while its job says running: it could not record its end."""
        child = self._children.pop(job["pid"], None)
        code = child.returncode if child is not None else None
        # it may have written its end between our two reads
        if self.store.update(job["id"], only_if=(RUNNING,), status=INTERRUPTED, error=VANISHED,
                             ended=time.time()):  # fmt: skip
            self.store.add_event(job["id"], "end", {"status": INTERRUPTED, "error": VANISHED,
                                                    "exit_code": code})  # fmt: skip

    def _launch(self, job: dict[str, Any]) -> None:
        log_path = self.log_path(job["id"])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        src = str(Path(__file__).resolve().parents[2])  # tunelab importable as this server has it
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        with open(log_path, "ab") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "tunelab.ui.worker", str(self.store.path), str(job["id"])],
                cwd=self.workspace, stdout=out, stderr=subprocess.STDOUT, env=env,
                stdin=subprocess.DEVNULL,
                # its own session: Ctrl-C on `tunelab ui` does not stop a training run, and the
                # page's Cancel reaches the worker alone
                start_new_session=True,
            )  # fmt: skip
        self._children[child.pid] = child
        self.store.update(job["id"], status=RUNNING, pid=child.pid, started=time.time(),
                          error=None, ended=None)  # fmt: skip

    def _alive(self, job: dict[str, Any]) -> bool:
        pid = job["pid"]
        if pid is None:
            return False
        if pid in self._children:  # ours: poll() also reaps it, so no zombie looks alive
            return self._children[pid].poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a process of another user took the number
            return False
        return _is_worker(pid, job["id"])

    def cancel(self, job: int) -> dict[str, Any] | None:
        """Cancel a job: a queued one at once; a running one through Ctrl-C (SIGINT), which
        makes the Trainer save a checkpoint after the current step and stop."""
        with self._lock:
            found = self.store.get(job)
            if found is None:
                return None
            if found["status"] == QUEUED:
                self.store.update(job, status=CANCELLED, error="cancelled before it started",
                                  ended=time.time())  # fmt: skip
                self.store.add_event(job, "end", {"status": CANCELLED, "error": None})
            elif found["status"] == RUNNING and found["pid"] and self._alive(found):
                os.kill(found["pid"], signal.SIGINT)
                stage = {"stage": "cancelling", "text": "saving a checkpoint, then stopping"}
                self.store.add_event(job, "stage", stage)
            return self.store.get(job)

    def resume(self, job: int) -> dict[str, Any] | None:
        """Queue an ended, unfinished job again, to continue from its newest checkpoint."""
        with self._lock:
            changed = self.store.update(job, only_if=RESUMABLE, status=QUEUED, resume=1,
                                        error=None, ended=None)  # fmt: skip
            if changed:
                self.store.add_event(job, "stage", {"stage": "queued", "text": "queued to resume"})
            return self.store.get(job)


def _is_worker(pid: int, job: int) -> bool:
    """Whether process ``pid`` is the worker of ``job`` (a reused process number is not)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the number
    return b"tunelab.ui.worker" in command and str(job).encode() in command

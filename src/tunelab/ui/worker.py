"""One training job in its own process: ``python -m tunelab.ui.worker JOBS_DB JOB_ID``.

It runs :func:`tunelab.api.train` with the job's overrides, exactly as ``tunelab train``
would from the workspace, with one more Trainer callback that writes progress (step, epoch,
ETA, throughput) and every log line (loss, learning rate, evaluation metrics) into the jobs
database for the Run page. Its end goes there too: finished, failed with the CLI's one-line
error, or cancelled: the page's Cancel sends SIGINT, the same Ctrl-C the CLI handles by
saving a checkpoint after the current step (``--resume`` continues it).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from tunelab.config import build_config
from tunelab.errors import RunInterrupted, UserError, one_line
from tunelab.process_defaults import watched_process_defaults
from tunelab.ui.jobs import CANCELLED, FAILED, FINISHED, JobStore

log = logging.getLogger("tunelab")
PROGRESS_EVERY_SECONDS = 0.5


def progress_callback(store: JobStore, job: int) -> Any:
    """A Trainer callback that records the run's progress and logs as job events."""
    from transformers import TrainerCallback

    class JobProgress(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.began = 0.0
            self.first_step = 0
            self.last_sent = 0.0
            self.samples_per_step = 1

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.began = time.time()
            self.first_step = state.global_step  # above 0 when resuming
            self.samples_per_step = (
                args.train_batch_size * args.gradient_accumulation_steps * args.world_size
            )
            store.add_event(job, "stage", {"stage": "training", "text": "training"})
            metric = (args.metric_for_best_model or "loss").removeprefix("eval_")
            store.add_event(job, "start", {
                "max_steps": state.max_steps, "epochs": args.num_train_epochs,
                "step": state.global_step, "samples_per_step": self.samples_per_step,
                "metric": metric,  # the validation metric that picks the best checkpoint
            })  # fmt: skip
            self._progress(state, force=True)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._progress(state)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            numbers = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
            store.add_event(job, "log", {"step": state.global_step, **numbers})

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._progress(state, force=True)
            store.add_event(job, "stage", {
                "stage": "scoring", "text": "scoring the model, writing model/, metrics and report",
            })  # fmt: skip

        def _progress(self, state: Any, force: bool = False) -> None:
            now = time.time()
            if not force and now - self.last_sent < PROGRESS_EVERY_SECONDS:
                return
            self.last_sent = now
            elapsed = now - self.began
            done = state.global_step - self.first_step
            rate = done / elapsed if elapsed > 0 and done > 0 else None
            left = max(state.max_steps - state.global_step, 0)
            store.add_event(job, "progress", {
                "step": state.global_step, "max_steps": state.max_steps,
                "epoch": round(state.epoch or 0.0, 4), "elapsed": round(elapsed, 2),
                "eta": round(left / rate, 1) if rate else None,
                "steps_per_second": round(rate, 3) if rate else None,
                "samples_per_second": round(rate * self.samples_per_step, 2) if rate else None,
            })  # fmt: skip

    return JobProgress()


def run_job(store: JobStore, job_id: int) -> int:
    """Train the job; record how it ended. Returns the exit code the CLI would give."""
    from tunelab import api

    job = store.get(job_id)
    if job is None:
        return 2
    store.add_event(job_id, "stage", {
        "stage": "preparing", "text": "reading and checking data, loading the model",
    })  # fmt: skip
    log.info("job %d: %s", job_id, job["command"] + (" --resume" if job["resume"] else ""))
    try:
        config = build_config({}, job["overrides"])
        api.train(
            config, resume=job["resume"], overwrite=job["overwrite"] and not job["resume"],
            callbacks=[progress_callback(store, job_id)],
        )  # fmt: skip
    except RunInterrupted as exc:
        store.end(job_id, CANCELLED, one_line(exc))
        return 130
    except KeyboardInterrupt:
        # Ctrl-C outside the Trainer's own handling (loading data, scoring): no new checkpoint
        store.end(job_id, CANCELLED, "interrupted outside training, so no checkpoint was saved "
                  "now; resume continues from the newest one, if any")  # fmt: skip
        return 130
    except UserError as exc:
        log.error("%s", one_line(exc))
        store.end(job_id, FAILED, one_line(exc))
        return 2
    except Exception as exc:  # a bug: the page gets the CLI's line, the log the traceback
        log.exception("job %d failed", job_id)
        store.end(job_id, FAILED, one_line(exc))
        return 1
    store.end(job_id, FINISHED)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process (started by :class:`tunelab.ui.jobs.Scheduler`)."""
    args = argv if argv is not None else sys.argv[1:]
    watched_process_defaults()
    return run_job(JobStore(Path(args[0])), int(args[1]))


if __name__ == "__main__":
    sys.exit(main())

"""The checks a run makes of its data before it trains (each task's ``diagnose``), run on
their own by ``tunelab doctor`` for the tasks without a doctor of their own: summaries and
translations, instructions and chats, preference pairs, search pairs, image captions and
chats, audio clips. The task and its columns are read from the data as ``tunelab train``
reads them, so the doctor and a run never disagree about what a file holds."""

from __future__ import annotations

from pathlib import Path

from tunelab.config import RunConfig
from tunelab.outputs import write_json
from tunelab.tasks import task_from_run_config
from tunelab.training.guesses import guess_from_data
from tunelab.training.prepare import read_splits

LINE_PREFIX = "data doctor: "  # training's log lines; the doctor's own report goes without


def diagnose_as_training_does(config: RunConfig, report: Path) -> str:
    """Read the splits ``config`` names as a run would (guessing the task and columns it
    leaves open, and logging the guess), run the task's checks and write them to ``report``.

    Returns:
        The terminal report: the task, then one line per finding.

    Raises:
        UserError: as ``tunelab train`` would for the same files (no fitting task, a missing
            column, an unreadable file).
    """
    guesses = guess_from_data(config)
    task = task_from_run_config(config)
    frames = read_splits(config, task, guesses.train)
    found = task.diagnose(frames, False, config.seed)
    write_json(report, {
        "task": config.task,
        "guessed": guesses.as_report() if guesses.decided else None,
        "rows": {split: len(frame) for split, frame in frames.items()},
        "doctor": found,
    })  # fmt: skip
    rows = ", ".join(f"{split} {len(frame):,} rows" for split, frame in frames.items())
    lines = [line.removeprefix(LINE_PREFIX) for line in task.doctor_lines(found)]
    return "\n".join([f"{config.task} checks, as tunelab train makes them ({rows}):",
                      *(lines or ["no problems found"])])  # fmt: skip

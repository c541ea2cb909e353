"""What a tunelab process a person watches sets up first: its log lines, quiet libraries and
the tokenizer's threads. The command line and the workbench's job worker both call it."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import IO

from tunelab.tokenizer_threads import one_core_by_default

LOG_FORMAT = "tunelab: %(levelname)s: %(message)s"
# `extra=` of a log record that the command line's summary prints again (a run's end warnings)
IN_SUMMARY = {"in_summary": True}


def watched_process_defaults() -> None:
    """tunelab's INFO lines, other libraries' warnings; no transformers chatter or progress
    bars for loading and saving (a few milliseconds each; the training bar stays); fast
    tokenizers on one core outside data-set tokenisation (:mod:`tunelab.tokenizer_threads`).
    Variables the user set are left as they are."""
    logging.basicConfig(format=LOG_FORMAT, level=logging.WARNING)
    logging.getLogger("tunelab").setLevel(logging.INFO)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    one_core_by_default()


def same_destination(first: IO[str], second: IO[str]) -> bool:
    """Whether two streams write to the same terminal, pipe or file (stdout and stderr in a
    terminal, or after ``2>&1``); False for streams without a file (captured in tests)."""
    try:
        one, other = os.fstat(first.fileno()), os.fstat(second.fileno())
    except (AttributeError, OSError, ValueError):  # io.StringIO, a closed or detached stream
        return False
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


class _LeaveOutSummarised(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "in_summary", False)


@contextlib.contextmanager
def summary_repeats_warnings() -> Iterator[None]:
    """Around a command whose summary on stdout prints the run's end warnings again: where
    stdout and stderr reach the same screen or file, the log lines of those warnings (records
    logged with ``extra=IN_SUMMARY``) are left out, so each shows once, beside the scores it
    judges. Written apart (``2> run.log``), both keep them."""
    handlers = logging.getLogger().handlers
    if not same_destination(sys.stdout, sys.stderr) or not handlers:
        yield
        return
    leave_out = _LeaveOutSummarised()
    for handler in handlers:
        handler.addFilter(leave_out)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(leave_out)

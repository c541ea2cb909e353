"""The command line's and the workbench worker's shared start: quiet libraries unless the
user asked otherwise, tunelab's own lines at INFO."""

from __future__ import annotations

import logging
import os

from tunelab import tokenizer_threads
from tunelab.process_defaults import watched_process_defaults

NAMES = ("TRANSFORMERS_VERBOSITY", "HF_DATASETS_DISABLE_PROGRESS_BARS",
         "HF_HUB_DISABLE_PROGRESS_BARS", "TOKENIZERS_PARALLELISM")  # fmt: skip


def test_defaults_fill_what_the_user_left_unset_and_keep_what_they_set(monkeypatch):
    for name in NAMES:
        monkeypatch.setenv(name, "recorded")  # so each variable's first state comes back after
        monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")  # the user wants those bars
    monkeypatch.setattr(tokenizer_threads, "_ours", False)
    monkeypatch.setattr(logging.getLogger("tunelab"), "level", logging.NOTSET)
    watched_process_defaults()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert logging.getLogger("tunelab").getEffectiveLevel() == logging.INFO


SCRIPT = """
import logging
from tunelab.process_defaults import IN_SUMMARY, LOG_FORMAT, summary_repeats_warnings
logging.basicConfig(format=LOG_FORMAT, level=logging.WARNING)
log = logging.getLogger("tunelab.training.finetune")
with summary_repeats_warnings():
    log.warning("test f1 below the baseline's", extra=IN_SUMMARY)
    log.warning("report.html was not written")
log.warning("after the run", extra=IN_SUMMARY)
print("WARNING: test f1 below the baseline's")
"""


def _run(stdout, stderr) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", SCRIPT], stdout=stdout, stderr=stderr, check=True)


def test_end_warnings_show_once_where_log_and_summary_share_a_screen(tmp_path):
    with open(tmp_path / "both.txt", "w") as both:  # a terminal, or `2>&1`
        _run(both, both)
    lines = (tmp_path / "both.txt").read_text().splitlines()
    assert sum("below the baseline" in line for line in lines) == 1  # the summary's alone
    assert "tunelab: WARNING: report.html was not written" in lines  # not a summary line
    assert "tunelab: WARNING: after the run" in lines  # outside the command, logged as ever


def test_end_warnings_stay_in_the_log_when_it_is_written_apart(tmp_path):
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "log.txt", "w") as log:
        _run(out, log)
    assert "tunelab: WARNING: test f1 below the baseline's" in (tmp_path / "log.txt").read_text()
    assert "WARNING: test f1 below the baseline's" in (tmp_path / "out.txt").read_text()

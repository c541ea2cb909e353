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

"""What a tunelab process a person watches sets up first: its log lines, quiet libraries and
the tokenizer's threads. The command line and the workbench's job worker both call it."""

from __future__ import annotations

import logging
import os

from tunelab.tokenizer_threads import one_core_by_default

LOG_FORMAT = "tunelab: %(levelname)s: %(message)s"


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

"""Fast tokenizers on every core while tokenising a data set, and on one core the rest of the time.

The command line sets ``TOKENIZERS_PARALLELISM=false`` (unless the user set it): a process
that forks after the Rust tokenizer used its thread pool prints a warning, and a forked child
that tokenises in parallel can hang, because the pool's threads do not survive the fork. That
also kept tokenising on one core. The library reads the variable at every call and judges a
fork by its value at that moment, so :func:`tokenizer_threads` turns parallelism on for the
length of a data set's tokenisation and off again after: counting the tokens of 100,000
Chinese rows took 7.7-8.5 s instead of 12.1-13.1 s on 2 cores
(``benchmarks/tokenizer_threads.py``). A setting the user made is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

VARIABLE = "TOKENIZERS_PARALLELISM"
_ours = False  # whether the variable's "false" is tunelab's default rather than the user's


def one_core_by_default() -> None:
    """Set ``TOKENIZERS_PARALLELISM=false`` unless the user set it, remembering that it was
    tunelab's choice (so :func:`tokenizer_threads` may lift it)."""
    global _ours
    if VARIABLE not in os.environ:
        os.environ[VARIABLE] = "false"
        _ours = True


@contextmanager
def tokenizer_threads() -> Iterator[None]:
    """Let fast tokenizers use every core inside; ``false`` again after, where
    :func:`one_core_by_default` set it (a user's own setting, or none, is left alone)."""
    if not (_ours and os.environ.get(VARIABLE) == "false"):
        yield
        return
    os.environ[VARIABLE] = "true"
    try:
        yield
    finally:
        os.environ[VARIABLE] = "false"

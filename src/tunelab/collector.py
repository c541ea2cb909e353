"""Collect garbage rarely while the command starts, then set what it loaded aside.

Importing torch, transformers and peft creates millions of Python objects, and CPython's
collector, counting allocations, walks all of them again and again as their number grows:
in a ``tunelab train`` of all-MiniLM-L6-v2 on 1,000 sentences, 9 full collections took
0.98 s and all collections 1.22 s of the 37.5 s run, 7 of the full ones during imports. The
command line raises the first generation's threshold while it starts; once the model is
loaded, everything alive is frozen (``gc.freeze``: later collections skip it) and the
usual thresholds return. If the command never gets there, it still collects, only less
often. A library caller's collector is left alone: only :func:`collect_rarely` changes it.
"""

from __future__ import annotations

import gc

STARTING_THRESHOLD = 100_000  # allocations between young-generation collections (700 usual)
_usual: tuple[int, ...] | None = None


def collect_rarely() -> None:
    """Raise the young generation's threshold until :func:`loaded` (the command line's start)."""
    global _usual
    if _usual is None:
        _usual = gc.get_threshold()
        gc.set_threshold(STARTING_THRESHOLD, *_usual[1:])


def loaded() -> None:
    """The heavy imports and the model are in memory: freeze them and collect as usual again.

    Does nothing unless :func:`collect_rarely` was called, and only the first time.
    """
    global _usual
    if _usual is not None:
        gc.freeze()
        gc.set_threshold(*_usual)
        _usual = None

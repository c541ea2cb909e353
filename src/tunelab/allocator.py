"""Keep freed memory in the process while a CPU prediction runs, instead of handing it back
each batch.

glibc serves an allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and
returns it with ``munmap`` when freed, and trims the heap's top above twice that. Prediction
frees and re-allocates its activations batch after batch, each batch of another length, so
each one page-faults its memory in again (the kernel zeroes every page). Raising the mmap and
trim thresholds keeps that memory in the heap for the next batch: predicting 4,000 Chinese
reviews with all-MiniLM-L6-v2 took 11.3 s instead of 12.1 (six repeats each, spread under
0.3 s), at 40 MB more (``benchmarks/allocator_settings.py``).

Training is left to glibc's defaults. The same setting won 1.28x there when it was added,
sessions of speed work ago; measured again on today's training it is within the repeats'
spread on MiniLM (zh reviews 34.6 s against 35.4, en sentences 18.3 against 19.3), and on a
135M model, whose large allocations change size step by step (the logits at the answer
tokens), the heap fragmented: the resident set grew to 13.3 GB in 40 steps against 11.4 with
glibc's defaults (17.5 against 13.1 GB over a 93-step run).

The setting is the process's, so :func:`freed_memory_kept` raises it for the prediction's
span only, and on leaving sets the thresholds to the ceiling glibc's own adaptive rule reaches
(mmap 32 MiB, trim 64 MiB): a later training in the same process (a search's next trial, an
active-learning round) does not inherit the raised values. It does
nothing where the C library is not glibc.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
import threading
from collections.abc import Iterator
from typing import Any

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # while predicting, allocations below 1 GiB come from the heap
TRIM_THRESHOLD = (1 << 31) - 1  # and freed memory stays in it
SETTLED_MMAP_THRESHOLD = 32 << 20  # afterwards: the highest glibc's adaptive rule sets,
SETTLED_TRIM_THRESHOLD = 64 << 20  # and its trim threshold, twice that
_depth = 0  # blocks open now (the server predicts from several threads)
_lock = threading.Lock()


@functools.cache
def _glibc() -> Any | None:
    """The C library, where it is glibc (whose ``mallopt`` parameters these are); looked up
    once: ``platform.libc_ver`` reads the interpreter's binary and ``find_library`` asks
    ldconfig, 1.6 ms together, on every prediction call otherwise."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _set_thresholds(libc: Any, mmap_threshold: int, trim_threshold: int) -> bool:
    try:
        return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
        )
    except AttributeError:  # a C library without mallopt
        return False


@contextlib.contextmanager
def freed_memory_kept() -> Iterator[bool]:
    """Within the block, glibc keeps freed memory up to 1 GiB in the heap; yields whether it
    does. Blocks open at once, nested or in other threads, share the setting: the first
    raises it and the last to close settles it."""
    global _depth
    libc = _glibc()
    with _lock:
        raised = libc is not None and (
            _depth > 0 or _set_thresholds(libc, MMAP_THRESHOLD, TRIM_THRESHOLD)
        )
        _depth += raised
    try:
        yield raised
    finally:
        if raised:
            with _lock:
                _depth -= 1
                if _depth == 0:
                    _set_thresholds(libc, SETTLED_MMAP_THRESHOLD, SETTLED_TRIM_THRESHOLD)

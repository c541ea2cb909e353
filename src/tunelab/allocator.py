"""Keep freed activation memory in the process on CPU, instead of handing it back each batch.

glibc serves an allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and
returns it with ``munmap`` when freed. A training step on the CPU frees and re-allocates its
large activations every step, and with batches of varying length they rarely fit the adapted
threshold, so each step page-faults its activations in again (the kernel zeroes every page).
Raising the mmap and trim thresholds keeps that memory in the heap for the next step: on
all-MiniLM-L6-v2 with length-varying batches a training epoch took 21.0 s instead of 26.9 s
(1.28x), system time 1.7 s instead of 2.8 s, at the same peak memory (2,614 vs 2,542 MB).
Prediction frees and re-allocates the same way batch after batch. The setting is the
process's, so it is made once, by the first training or prediction on the CPU, and only
where the C library is glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # allocations below 1 GiB come from the heap
TRIM_THRESHOLD = (1 << 31) - 1  # and freed memory stays in it
_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once per process); whether they are raised."""
    global _done
    if _done:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):
        return False
    if _done:
        log.debug("glibc keeps freed memory up to 1 GiB in the heap (mallopt)")
    return _done

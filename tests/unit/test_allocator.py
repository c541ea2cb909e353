"""CPU prediction keeps freed memory in the heap (glibc's mallopt) for its span only, and does
nothing where the C library is not glibc."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tunelab import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
SETTLED = [(allocator.M_MMAP_THRESHOLD, allocator.SETTLED_MMAP_THRESHOLD),
           (allocator.M_TRIM_THRESHOLD, allocator.SETTLED_TRIM_THRESHOLD)]  # fmt: skip


class RecordingLibc:
    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return self.answer


@pytest.fixture(autouse=True)
def looked_up_afresh():
    """Each test's C library is looked up afresh, and none of theirs is kept after."""
    allocator._glibc.cache_clear()
    yield
    allocator._glibc.cache_clear()


def glibc_like(monkeypatch, libc: RecordingLibc) -> None:
    monkeypatch.setattr(allocator.platform, "system", lambda: "Linux")
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda _: libc)


def test_thresholds_are_raised_for_the_block_and_settled_after_it(monkeypatch) -> None:
    libc = RecordingLibc()
    glibc_like(monkeypatch, libc)
    with allocator.freed_memory_kept() as kept:
        assert kept
        assert libc.calls == [(allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD),
                              (allocator.M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD)]  # fmt: skip
        libc.calls.clear()
    assert libc.calls == SETTLED


def test_a_nested_block_leaves_the_setting_to_the_outer_one(monkeypatch) -> None:
    libc = RecordingLibc()
    glibc_like(monkeypatch, libc)
    with allocator.freed_memory_kept():
        with allocator.freed_memory_kept() as inner:
            assert inner
        assert len(libc.calls) == 2  # the inner block neither raised nor settled anything
    assert len(libc.calls) == 4 and allocator._depth == 0


def test_the_setting_is_settled_when_the_block_raises(monkeypatch) -> None:
    libc = RecordingLibc()
    glibc_like(monkeypatch, libc)
    with pytest.raises(RuntimeError), allocator.freed_memory_kept():
        raise RuntimeError("a batch failed")
    assert libc.calls[-1] == (allocator.M_TRIM_THRESHOLD, allocator.SETTLED_TRIM_THRESHOLD)
    assert allocator._depth == 0


def test_other_c_libraries_are_left_alone(monkeypatch) -> None:
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", "1.2"))
    with allocator.freed_memory_kept() as kept:
        assert kept is False


def test_a_refusing_mallopt_is_not_counted_as_raised(monkeypatch) -> None:
    libc = RecordingLibc(answer=0)
    glibc_like(monkeypatch, libc)
    with allocator.freed_memory_kept() as kept:
        assert kept is False
    assert len(libc.calls) == 1 and allocator._depth == 0  # nothing to settle


FAULTS_INSIDE_AND_OUTSIDE = """
import resource
import numpy as np
from tunelab.allocator import freed_memory_kept

def faults_of_three_allocations():
    np.ones(48 << 18, np.float32)  # 48 MB: above glibc's own 32 MB ceiling for its heap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        np.ones(48 << 18, np.float32)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults_of_three_allocations()
with freed_memory_kept() as kept:
    print(kept, outside, faults_of_three_allocations())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_memory_freed_inside_the_block_is_reused_without_page_faults() -> None:
    # a fresh process: this one's heap already holds what earlier tests freed
    done = subprocess.run([sys.executable, "-c", FAULTS_INSIDE_AND_OUTSIDE],
                          capture_output=True, text=True, check=True)  # fmt: skip
    kept, outside, inside = done.stdout.split()
    assert kept == "True"
    assert int(inside) < 10 < int(outside)  # outside, each allocation is mmap'd afresh


def test_overlapping_blocks_settle_when_the_last_one_closes(monkeypatch) -> None:
    libc = RecordingLibc()
    glibc_like(monkeypatch, libc)
    first = allocator.freed_memory_kept()
    second = allocator.freed_memory_kept()
    first.__enter__()
    second.__enter__()  # as another thread's prediction would, while the first still runs
    first.__exit__(None, None, None)
    assert len(libc.calls) == 2  # the second block still runs with the raised setting
    second.__exit__(None, None, None)
    assert libc.calls[2:] == SETTLED

"""The CPU training stage keeps freed activation memory in the heap (glibc's mallopt), once
per process, and does nothing where the C library is not glibc."""

from __future__ import annotations

import platform

import pytest

from tunelab import allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_thresholds_are_raised_once_on_glibc(monkeypatch) -> None:
    monkeypatch.setattr(allocator, "_done", False)
    calls = []

    class Libc:
        def mallopt(self, parameter: int, value: int) -> int:
            calls.append((parameter, value))
            return 1

    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda _: Libc())
    assert allocator.keep_freed_memory() and allocator.keep_freed_memory()
    assert calls == [(allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD),
                     (allocator.M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD)]  # fmt: skip


def test_other_c_libraries_are_left_alone(monkeypatch) -> None:
    monkeypatch.setattr(allocator, "_done", False)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator.keep_freed_memory() is False


def test_a_refusing_mallopt_is_not_counted_as_done(monkeypatch) -> None:
    monkeypatch.setattr(allocator, "_done", False)
    monkeypatch.setattr(allocator.platform, "system", lambda: "Linux")
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))

    class Refusing:
        def mallopt(self, parameter: int, value: int) -> int:
            return 0

    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda _: Refusing())
    assert allocator.keep_freed_memory() is False and allocator._done is False

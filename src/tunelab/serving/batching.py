"""Micro-batching: requests that arrive together are answered by one forward pass."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

Item = tuple[str, str | None]  # a text and, for pair models, its second text


class MicroBatcher:
    """Queue the items of concurrent requests and run them through ``infer`` together.

    One worker task takes the first waiting request, then gathers more until it holds at
    least ``max_batch`` items or ``wait_ms`` have passed, and runs ``infer`` in a thread so
    the event loop keeps accepting requests meanwhile. Only that worker calls ``infer``, so
    the model never runs two batches at once.
    """

    def __init__(
        self, infer: Callable[[list[Item]], list[dict[str, Any]]], max_batch: int, wait_ms: float
    ) -> None:
        self.infer = infer
        self.max_batch = max_batch
        self.wait = wait_ms / 1000
        self.batches = 0  # calls of infer so far
        self.items = 0  # items answered so far
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, items: list[Item]) -> list[dict[str, Any]]:
        """Answer ``items`` (one record each, in order) as part of the next batch."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            # a queue belongs to one event loop; a new loop (tests, reloads) gets its own
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._work())
        future: asyncio.Future = loop.create_future()
        assert self._queue is not None
        await self._queue.put((items, future))
        return await future

    async def close(self) -> None:
        """Stop the worker (requests still queued are cancelled)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _work(self) -> None:
        assert self._queue is not None and self._loop is not None
        queue, loop = self._queue, self._loop
        while True:
            jobs = [await queue.get()]
            size = len(jobs[0][0])
            deadline = loop.time() + self.wait
            while size < self.max_batch:
                try:
                    if queue.empty():
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        job = await asyncio.wait_for(queue.get(), remaining)
                    else:
                        job = queue.get_nowait()
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                size += len(job[0])
            await self._answer(jobs)

    async def _answer(self, jobs: list[tuple[list[Item], asyncio.Future]]) -> None:
        items = [item for job_items, _ in jobs for item in job_items]
        try:
            records = await asyncio.to_thread(self.infer, items)
            self.batches += 1
        except Exception as exc:
            if len(jobs) == 1:
                _settle(jobs[0][1], exception=exc)
            else:  # answer each request alone, so one bad input fails only its own request
                for job in jobs:
                    await self._answer([job])
            return
        self.items += len(items)
        start = 0
        for job_items, future in jobs:
            _settle(future, result=records[start : start + len(job_items)])
            start += len(job_items)


def _settle(
    future: asyncio.Future, result: Any = None, exception: BaseException | None = None
) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)

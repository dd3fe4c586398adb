"""Group commit: many concurrent callers, one transaction.

Each caller submits one item and awaits its own result; the items submitted within a short
window (or until `max_items`) are written together by one call of `write(items)`, which
returns one result per item, in order. A failure of that call fails every caller in the
group, who then decide as they would for their own failed write. It trades a few
milliseconds of latency for one database round trip per group instead of one per item.

`max_in_flight`: at most that many groups are being written at once; what arrives meanwhile waits
and goes as the next group (up to `max_items`) when one is committed. Where a commit costs more
than the window (a WAL flush, a round trip), groups then grow with the load instead of queueing
one commit each; two in flight keep the process busy with one group's answers while the
database works on the next.

`window_gaps`: the window is then at most `window_seconds` and at most that many times the usual gap
between submissions (a moving average). At a moderate, steady rate a group waits for about that many
more callers; when callers come in bursts (many clients, each waiting for its answer before its next
request) the window shrinks to the burst's length, where a fixed one would make every caller wait it
out and cap the clients' rate at their number per window."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], *, window_seconds: float = 0.002,
                 max_items: int = 200, max_in_flight: int | None = None, window_gaps: float | None = None):
        self._write = write
        self._max_in_flight = max_in_flight
        self._window = window_seconds
        self._window_gaps = window_gaps
        self._gap = window_seconds  # moving average of the time between submissions, each counted up to the window
        self._last_submitted: float | None = None
        self._max_items = max_items
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.Handle | None = None
        self._deadline = 0.0  # when the timer starts the pending group
        self._writing: set[asyncio.Task] = set()
        self.groups_written = 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        now = loop.time()
        window = self._next_window(now)
        if len(self._pending) >= self._max_items:
            self._start_group()
        elif self._timer is None:  # no window: the group takes what this turn of the loop has read
            self._deadline = now + window
            self._timer = loop.call_at(self._deadline, self._start_group) if window else loop.call_soon(self._start_group)
        elif now + window < self._deadline:  # arrivals came closer (window_gaps): the group need not wait as long
            self._timer.cancel()
            self._deadline = now + window
            self._timer = loop.call_at(self._deadline, self._start_group)
        return await future

    def _next_window(self, now: float) -> float:
        if self._window_gaps is None:
            return self._window
        if self._last_submitted is not None:
            self._gap += 0.2 * (min(now - self._last_submitted, self._window) - self._gap)
        self._last_submitted = now
        return min(self._window, self._window_gaps * self._gap)

    async def drain(self) -> None:
        """Write what is pending now and wait until every group is written (a graceful stop)."""
        while self._pending or self._writing:
            self._start_group()
            if self._writing:
                await asyncio.gather(*self._writing, return_exceptions=True)

    def _start_group(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._max_in_flight is not None and len(self._writing) >= self._max_in_flight:
            return  # a group being written starts the next one when it is done
        group, self._pending = self._pending[:self._max_items], self._pending[self._max_items:]
        if group:
            task = asyncio.get_running_loop().create_task(self._write_group(group))
            self._writing.add(task)  # a reference, or the task may be collected mid-way
            task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task) -> None:
        self._writing.discard(task)
        if self._max_in_flight is not None and self._pending:
            self._start_group()

    async def _write_group(self, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in group])
            if len(results) != len(group):
                raise RuntimeError(f"group write returned {len(results)} results for {len(group)} items")
        except BaseException as exc:  # noqa: BLE001 - every caller must hear about it, cancellation included
            for _, future in group:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        self.groups_written += 1
        for (_, future), result in zip(group, results):
            if not future.done():
                future.set_result(result)

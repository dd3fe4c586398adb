"""Pacing and serialising deliveries. Sends are paced per destination domain and per tenant,
so a big run neither trips a receiver's rate limits (greylisting on bursts) nor lets one
tenant starve the others; deliveries of one dispatch never overlap."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from contextlib import asynccontextmanager


class RatePacer:
    """At most `rate` starts per second per key, with bursts of `burst` (a virtual-time bucket):
    `await pacer.wait(key)` returns when the caller may start. rate 0 means no limit."""

    def __init__(self, rate: float, burst: int = 1):
        self._interval = 1 / rate if rate > 0 else 0.0
        self._burst_span = self._interval * max(burst, 1)
        self._next_free: dict[str, float] = defaultdict(float)

    async def wait(self, key: str) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        start = max(self._next_free[key], now - self._burst_span + self._interval)
        self._next_free[key] = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)


class KeyedLimit:
    """At most `limit` holders per key at once (0: unlimited)."""

    def __init__(self, limit: int):
        self._limit = limit
        self._slots: dict[str, asyncio.Semaphore] = {}

    def slot(self, key: str) -> asyncio.Semaphore | _NoLimit:
        if not self._limit:
            return _NO_LIMIT
        if key not in self._slots:
            self._slots[key] = asyncio.Semaphore(self._limit)
        return self._slots[key]


class KeyedLocks:
    """One holder per key at a time; a key's lock lives only while someone holds or waits for it."""

    def __init__(self):
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str):
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class _NoLimit:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc) -> None:
        return None


_NO_LIMIT = _NoLimit()

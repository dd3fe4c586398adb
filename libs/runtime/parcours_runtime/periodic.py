"""A background job that runs one pass every `period` seconds until stopped (the host's
BackgroundJob protocol). Subclasses implement `run_once()`, which routes and tests may also
call directly."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class PeriodicJob:
    def __init__(self, period_seconds: float):
        self._period = period_seconds
        self._stopping = asyncio.Event()
        self._woken = asyncio.Event()
        self._loop_pass = asyncio.Lock()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run_once(self):
        raise NotImplementedError

    def wake(self) -> None:
        """Start the next pass now rather than at the next tick (work just arrived)."""
        self._woken.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._woken.clear()
            async with self._loop_pass:
                try:
                    await self.run_once()
                except Exception:  # database away: what was due stays due for the next pass
                    log.exception("%s pass failed; retrying at the next tick", type(self).__name__)
            waits = [asyncio.ensure_future(self._stopping.wait()), asyncio.ensure_future(self._woken.wait())]
            try:
                await asyncio.wait(waits, timeout=self._period, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()

    async def stop(self) -> None:
        """Let the pass in hand reach a commit, then return; what is left stays due."""
        self._stopping.set()
        async with self._loop_pass:
            pass

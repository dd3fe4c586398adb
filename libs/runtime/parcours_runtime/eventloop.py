"""The event loop every Parcours process runs on: uvloop (libuv), whose wake-ups, socket reads and timers
cost a fraction of asyncio's pure-Python selector loop (a tracked-link click: 0.15 → 0.12 CPU ms). The
benchmarks run their yardsticks and load clients on it too, so that a ratio compares like with like."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a uvloop loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)

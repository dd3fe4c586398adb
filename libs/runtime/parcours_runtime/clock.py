"""Where "now" comes from. Production reads the system clock; demos and tests travel in time
with a settable one (setting `time_travel`, refused in production), so a 30-day strategy or a
2-business-day receipt window can be watched in seconds. The clock lives in
`ctx.extras["clock"]`; `clock_routes` lets an operator read and move it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict

from parcours_runtime.problems import Problem

CLOCK = "clock"  # key of the service's clock in ServiceContext.extras


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def _require_aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("the clock needs a timezone-aware datetime")
    return instant.astimezone(timezone.utc)


class SettableClock:
    """A clock that stands still until it is set or advanced (in either direction)."""

    def __init__(self, start: datetime):
        self._now = _require_aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> datetime:
        self._now = _require_aware(instant)
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now = self._now + delta
        return self._now


def clock_for(*, time_travel: bool) -> Clock:
    """Time travel starts at the real now and moves only when told to."""
    return SettableClock(SystemClock().now()) if time_travel else SystemClock()


class ClockWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: AwareDatetime


class ClockRead(BaseModel):
    now: datetime


def clock_routes(router: APIRouter) -> None:
    """`GET|PUT {prefix}/clock` on `router` (which carries the admin guard)."""

    @router.get("/clock", response_model=ClockRead, summary="The service's current time")
    async def get_clock(request: Request) -> ClockRead:
        return ClockRead(now=request.app.state.ctx.extras[CLOCK].now())

    @router.put("/clock", response_model=ClockRead, summary="Travel to another instant (time_travel only)",
                responses={409: {"description": "The service runs on the real clock"}})
    async def set_clock(body: ClockWrite, request: Request) -> ClockRead:
        clock = request.app.state.ctx.extras[CLOCK]
        if not isinstance(clock, SettableClock):
            raise Problem(409, "The service clock cannot be set (time_travel is off).")
        return ClockRead(now=clock.set(body.now))

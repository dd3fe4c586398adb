"""Where "now" comes from. Production reads the system clock; demos and tests travel in time
with a settable one, so a 2-business-day receipt window can be watched in seconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


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
    """A clock that stands still until it is set or advanced."""

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

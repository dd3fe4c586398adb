"""Business days and sending windows: public holidays of a country (the `holidays` package),
weekends, and the hours at which a reminder may reach a customer, in a time zone."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

WEEKDAYS = (0, 1, 2, 3, 4)
_OPENINGS_KEPT = 20_000  # days of openings kept per calendar (about 55 years)


def known_zone(value: str | None) -> str | None:
    """`value` if it names an IANA time zone this machine knows (None passes); ValueError otherwise."""
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
    return value


class BusinessCalendar:
    """Counts business days and moves instants into the sending window (local time)."""

    def __init__(self, *, country: str = "FR", tz: str = "Europe/Paris", window_start: time = time(8),
                 window_end: time = time(18), window_days: Iterable[int] = WEEKDAYS):
        if window_end <= window_start:
            raise ValueError("the sending window must end after it starts")
        self.country = country
        self.tz = ZoneInfo(tz)
        self.window_start, self.window_end = window_start, window_end
        self.window_days = frozenset(window_days)
        if not self.window_days:
            raise ValueError("the sending window needs at least one day")
        self._holidays = holidays.country_holidays(country)
        self._zones: dict[str, BusinessCalendar] = {}
        self._openings: dict[date, datetime] = {}

    def in_zone(self, tz: str | None) -> BusinessCalendar:
        """The same calendar and window, read in another time zone (a customer's); cached."""
        if tz is None or tz == self.tz.key:
            return self
        if tz not in self._zones:
            zoned = copy.copy(self)
            zoned.tz, zoned._zones, zoned._openings = ZoneInfo(tz), {}, {}
            self._zones[tz] = zoned
        return self._zones[tz]

    def is_holiday(self, day: date) -> bool:
        return day in self._holidays

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and not self.is_holiday(day)

    def shift(self, day: date, days: int, *, business: bool) -> date:
        """`day` moved by `days` calendar days, or business days (a non-business start counts from the next one)."""
        if not business:
            return day + timedelta(days=days)
        step = 1 if days >= 0 else -1
        while not self.is_business_day(day):
            day += timedelta(days=step)
        remaining = abs(days)
        while remaining:
            day += timedelta(days=step)
            if self.is_business_day(day):
                remaining -= 1
        return day

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def _sendable_day(self, day: date) -> bool:
        return day.weekday() in self.window_days and not self.is_holiday(day)

    def next_slot(self, instant: datetime) -> datetime:
        """The first instant at or after `instant` inside the sending window, in UTC."""
        local = instant.astimezone(self.tz)
        day = local.date()
        if self._sendable_day(day) and local.time() < self.window_end:
            if local.time() >= self.window_start:
                return instant.astimezone(timezone.utc)
            return self._at(day, self.window_start)
        for _ in range(400):  # a year of closed days would be a configuration error
            day += timedelta(days=1)
            if self._sendable_day(day):
                return self._at(day, self.window_start)
        raise ValueError("no sending slot within a year: check the sending window")

    def opening_of(self, day: date) -> datetime:
        """When a step planned for `day` fires: the window's opening that day, or the next slot.
        Kept per day: every re-planning of every invoice asks it for each step (time zone
        conversions and holiday lookups were ≈ 5 % of dunning's CPU)."""
        if (opening := self._openings.get(day)) is None:
            if len(self._openings) >= _OPENINGS_KEPT:
                self._openings.clear()
            opening = self._openings[day] = self.next_slot(self._at(day, self.window_start))
        return opening

    def _at(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.tz).astimezone(timezone.utc)

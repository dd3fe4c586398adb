"""Days sales outstanding, month by month: at each month's end, what customers owed then over what
they were invoiced in the trailing window, times the window's days (the count-back-free, average
method). Pure functions over plain values."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

WINDOW_DAYS = 90


@dataclass(frozen=True)
class DsoPoint:
    month_end: date
    dso: int | None  # None: nothing invoiced in the window
    receivables: Decimal


def month_ends(today: date, months: int) -> list[date]:
    """The last `months` month ends, oldest first; the current month ends today."""
    ends, day = [], today
    for _ in range(months):
        ends.append(day)
        day = day.replace(day=1) - timedelta(days=1)
    return ends[::-1]


def dso_trend(invoices: list[tuple[object, date | None, Decimal | None]], payments: list[tuple[object, date, Decimal]],
              *, today: date, months: int = 12, window_days: int = WINDOW_DAYS) -> list[DsoPoint]:
    """`invoices`: (id, issue date, amount incl. tax); `payments`: (invoice id, paid on, amount)."""
    issued = sorted((issue, total) for _, issue, total in invoices if issue is not None and total)
    issue_dates = [issue for issue, _ in issued]
    cumulative = [Decimal("0")]
    for _, total in issued:
        cumulative.append(cumulative[-1] + total)
    issue_of = {key: issue for key, issue, total in invoices if issue is not None and total}
    paid = sorted((on, amount) for key, on, amount in payments if key in issue_of)
    paid_dates = [on for on, _ in paid]
    paid_sum = [Decimal("0")]
    for _, amount in paid:
        paid_sum.append(paid_sum[-1] + amount)

    def invoiced_until(day: date) -> Decimal:
        return cumulative[bisect.bisect_right(issue_dates, day)]

    points = []
    for end in month_ends(today, months):
        owed = max(invoiced_until(end) - paid_sum[bisect.bisect_right(paid_dates, end)], Decimal("0"))
        sales = invoiced_until(end) - invoiced_until(end - timedelta(days=window_days))
        points.append(DsoPoint(end, round(owed / sales * window_days) if sales > 0 else None, owed))
    return points


@dataclass(frozen=True)
class Dot:
    x: int
    y: int
    label: str
    value: int | None


def line(points: list[DsoPoint], *, width: int = 560, height: int = 160, margin: int = 24) -> list[Dot]:
    """Geometry of the trend (SVG units, origin top-left); months without a figure sit on the axis."""
    top = max((p.dso for p in points if p.dso is not None), default=0) or 1
    step = (width - 2 * margin) / max(len(points) - 1, 1)
    return [Dot(round(margin + i * step), round(height - (height - margin) * (p.dso or 0) / top),
                p.month_end.strftime("%m/%y"), p.dso) for i, p in enumerate(points)]

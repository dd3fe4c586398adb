"""What the console concludes from the read model: where dunning stands for an invoice, and how
old the money owed is. Pure functions over plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from statistics import median

PAUSING = {"EN_LITIGE", "SUSPENDUE"}
STOPPING = {"REFUSEE", "PAIEMENT_TRANSMIS", "ENCAISSEE", "REJETEE"}
NOT_PROVEN = {"pending", "received", "queued", "sent", "unroutable", "failed", "bounced"}
CLOSED = STOPPING


@dataclass(frozen=True)
class Outlook:
    """Dunning's state for one invoice as the events show it: `state` is a message key, `detail` its argument."""

    state: str
    detail: str | None = None


def dunning_outlook(*, status: str, promised_on: date | None, due_date: date | None,
                    last_step: str | None, today: date) -> Outlook:
    """Mirrors dunning's rules: stopped by payment or refusal, paused by a dispute or suspension,
    deferred by a promise, gated on proof of receipt; otherwise the strategy runs on."""
    if status in STOPPING:
        return Outlook("outlook.stopped", status)
    if status in PAUSING:
        return Outlook("outlook.paused", status)
    if promised_on is not None and promised_on >= today:
        return Outlook("outlook.deferred", promised_on.isoformat())
    if status in NOT_PROVEN:
        return Outlook("outlook.waiting_proof", None)
    if last_step:
        return Outlook("outlook.after_step", last_step)
    if due_date is not None and due_date >= today:
        return Outlook("outlook.not_due", due_date.isoformat())
    return Outlook("outlook.active", None)


BUCKETS = (("aging.not_due", None, 0), ("aging.1_30", 1, 30), ("aging.31_60", 31, 60),
           ("aging.61_90", 61, 90), ("aging.over_90", 91, None))


@dataclass(frozen=True)
class Bucket:
    label: str
    count: int
    amount: Decimal


def aging(rows: list[tuple[date | None, Decimal | None, str]], *, today: date) -> list[Bucket]:
    """Open amounts of the invoices still owed (rows of due date, open amount, status) by days past due."""
    counts = {label: [0, Decimal("0")] for label, _, _ in BUCKETS}
    for due, amount, status in rows:
        if due is None or status in CLOSED or not amount:
            continue
        late = (today - due).days
        for label, low, high in BUCKETS:
            if (low is None and late <= 0) or (low is not None and late >= low and (high is None or late <= high)):
                counts[label][0] += 1
                counts[label][1] += amount
                break
    return [Bucket(label, count, amount) for label, (count, amount) in counts.items()]


@dataclass(frozen=True)
class Bar:
    label: str
    x: int
    y: int
    width: int
    height: int
    count: int
    amount: Decimal


def bars(buckets: list[Bucket], *, width: int = 560, height: int = 180, gap: int = 16) -> list[Bar]:
    """Geometry of a bar chart (SVG units, origin top-left) whose bar heights are the amounts."""
    top = max((b.amount for b in buckets), default=Decimal("0")) or Decimal("1")
    bar_width = (width - gap * (len(buckets) + 1)) // max(len(buckets), 1)
    result = []
    for i, bucket in enumerate(buckets):
        bar_height = int(height * bucket.amount / top)
        result.append(Bar(bucket.label, gap + i * (bar_width + gap), height - bar_height, bar_width, bar_height,
                          bucket.count, bucket.amount))
    return result


@dataclass(frozen=True)
class ChannelStat:
    channel: str
    sent: int
    proven: int
    median_hours: float | None  # from the first dispatch to the first proof of receipt

    @property
    def rate(self) -> int:
        return round(100 * self.proven / self.sent) if self.sent else 0


def delivery_by_channel(rows: list[tuple[str | None, datetime | None, datetime | None]]) -> list[ChannelStat]:
    """Rows of (channel, first dispatch, first proof): how many were proven received, and how fast."""
    by_channel: dict[str, list] = {}
    for channel, sent, proven in rows:
        if channel is None or sent is None:
            continue
        stat = by_channel.setdefault(channel, [0, []])
        stat[0] += 1
        if proven is not None:
            stat[1].append(max((proven - sent).total_seconds(), 0) / 3600)
    return [ChannelStat(channel, sent, len(delays), round(median(delays), 1) if delays else None)
            for channel, (sent, delays) in sorted(by_channel.items())]


PAID = {"PAIEMENT_TRANSMIS", "ENCAISSEE"}


def paid_after_reminder(statuses: list[str]) -> tuple[int, int]:
    """(reminded invoices, of which paid)."""
    return len(statuses), sum(1 for status in statuses if status in PAID)

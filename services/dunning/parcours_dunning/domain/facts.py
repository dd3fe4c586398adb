"""What dunning knows of an invoice: its terms and the signals of its life (dispatches,
receipt evidence, lifecycle statuses, payments, promises, operator holds), each with the
instant it happened. Signals arrive in any order; everything here is derived from them,
sorted by time, so the same facts give the same answer whenever they were learnt."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

SignalKind = Literal["dispatched", "delivery_failed", "acked", "viewed", "lifecycle", "payment", "promise",
                     "pause", "resume", "exclude", "customer_pause", "customer_resume"]

PAUSING_CODES = {207: "disputed (207 EN_LITIGE)", 208: "suspended (208 SUSPENDUE)"}
STOPPING_CODES = {210: "refused (210 REFUSEE)", 211: "payment transmitted (211 PAIEMENT_TRANSMIS)",
                  212: "cashed (212 ENCAISSEE)", 213: "rejected by the platform (213 REJETEE)"}
# Statuses only a customer who has the invoice can give (203 "made available" proves nothing).
RECEIPT_CODES = {202, 204, 205, 206, 207, 208, 209, 210, 211, 212}


@dataclass(frozen=True)
class Signal:
    at: datetime
    kind: SignalKind
    purpose: str = "invoice"                # dispatched / delivery_failed: invoice or reminder
    code: int | None = None                 # lifecycle: the 2026 code, if any
    status: str | None = None               # lifecycle: the status name
    open_amount: Decimal | None = None      # payment
    fully_paid: bool = False                # payment
    promised_on: date | None = None         # promise
    detail: str = ""


@dataclass(frozen=True)
class Receipt:
    kind: str
    at: datetime


@dataclass(frozen=True)
class Hold:
    """An interval during which no step fires; `end` None: still holding."""

    start: datetime
    end: datetime | None
    reason: str


@dataclass(frozen=True)
class InvoiceFacts:
    issue_date: date
    due_date: date
    amount: Decimal = Decimal(0)
    currency: str = "EUR"
    customer_tags: frozenset[str] = frozenset()
    signals: tuple[Signal, ...] = field(default_factory=tuple)
    timezone: str | None = None             # the customer's zone; None: the service's

    def known_at(self, instant: datetime) -> InvoiceFacts:
        """The facts as they stood at `instant` (the simulator's view)."""
        return replace(self, signals=tuple(s for s in self.signals if s.at <= instant))

    def with_signals(self, *signals: Signal) -> InvoiceFacts:
        return replace(self, signals=self.signals + signals)

    def _sorted(self, *kinds: str) -> list[Signal]:
        return sorted((s for s in self.signals if s.kind in kinds), key=lambda s: s.at)

    @property
    def dispatched_at(self) -> datetime | None:
        """When a channel first handed the invoice itself over."""
        return next((s.at for s in self._sorted("dispatched") if s.purpose == "invoice"), None)

    @property
    def receipt(self) -> Receipt | None:
        """The first sign that the customer has the invoice."""
        for s in self._sorted("acked", "viewed", "lifecycle"):
            if s.kind == "acked":
                return Receipt("delivery.acked", s.at)
            if s.kind == "viewed" or s.status == "viewed":
                return Receipt("link.clicked", s.at)
            if s.code in RECEIPT_CODES:
                return Receipt(f"lifecycle {s.code}", s.at)
        return None

    @property
    def viewed(self) -> bool:
        return any(s.kind == "viewed" or (s.kind == "lifecycle" and s.status == "viewed") for s in self.signals)

    @property
    def open_amount(self) -> Decimal:
        payments = self._sorted("payment")
        return payments[-1].open_amount if payments else self.amount

    @property
    def disputed(self) -> bool:
        coded = [s for s in self._sorted("lifecycle") if s.code is not None]
        return bool(coded) and coded[-1].code in PAUSING_CODES

    def status_reached(self, codes: frozenset[int]) -> Signal | None:
        """The first lifecycle status among `codes` the invoice reached, if any."""
        return next((s for s in self._sorted("lifecycle") if s.code in codes), None)

    @property
    def promised_on(self) -> date | None:
        promises = self._sorted("promise")
        return promises[-1].promised_on if promises else None

    def stop(self) -> tuple[datetime, str] | None:
        """When and why dunning ended for good, if it did."""
        for s in sorted(self.signals, key=lambda s: s.at):
            if s.kind == "lifecycle" and s.code in STOPPING_CODES:
                return s.at, STOPPING_CODES[s.code]
            if s.kind == "payment" and (s.fully_paid or (s.open_amount is not None and s.open_amount <= 0)):
                return s.at, "paid in full"
            if s.kind == "exclude":
                return s.at, f"excluded from dunning{': ' + s.detail if s.detail else ''}"
        return None

    def holds(self, *, promise_grace_days: int, promise_resumes_at: time, tz) -> list[Hold]:
        """Every interval during which steps wait, in order of start."""
        return sorted(self._lifecycle_holds() + self._operator_holds() + self._delivery_holds()
                      + self._promise_holds(promise_grace_days, promise_resumes_at, tz), key=lambda h: h.start)

    def _lifecycle_holds(self) -> list[Hold]:
        holds, opened = [], None
        for s in self._sorted("lifecycle"):
            if s.code is None:
                continue  # technical statuses (viewed, bounced…) neither pause nor resume
            if s.code in PAUSING_CODES and opened is None:
                opened = s
            elif s.code not in PAUSING_CODES and opened is not None:
                holds.append(Hold(opened.at, s.at, f"paused: {PAUSING_CODES[opened.code]}"))
                opened = None
        if opened is not None:
            holds.append(Hold(opened.at, None, f"paused: {PAUSING_CODES[opened.code]}"))
        return holds

    def _operator_holds(self) -> list[Hold]:
        """Pauses of this invoice and of its whole customer, each until its own resume."""
        return (_paired(self._sorted("pause", "resume"), "pause", "paused by an operator")
                + _paired(self._sorted("customer_pause", "customer_resume"), "customer_pause",
                          "customer paused by an operator"))

    def _delivery_holds(self) -> list[Hold]:
        """A failed or bounced delivery holds the steps until a later dispatch got through."""
        holds, opened = [], None
        for s in self._sorted("delivery_failed", "dispatched"):
            if s.kind == "delivery_failed" and opened is None:
                opened = s
            elif s.kind == "dispatched" and opened is not None:
                holds.append(Hold(opened.at, s.at, f"deferred: {opened.detail}"))
                opened = None
        if opened is not None:
            holds.append(Hold(opened.at, None, f"deferred until a fallback delivers: {opened.detail}"))
        return holds

    def _promise_holds(self, grace_days: int, resumes_at: time, tz) -> list[Hold]:
        return [Hold(s.at, datetime.combine(s.promised_on + timedelta(days=grace_days), resumes_at, tzinfo=tz),
                     f"paused: payment promised for {s.promised_on.isoformat()} (+{grace_days} days of grace)")
                for s in self._sorted("promise") if s.promised_on is not None]


def _paired(signals: list[Signal], opening: str, what: str) -> list[Hold]:
    holds, opened = [], None
    for s in signals:
        if s.kind == opening and opened is None:
            opened = s
        elif s.kind != opening and opened is not None:
            holds.append(Hold(opened.at, s.at, f"{what}{': ' + opened.detail if opened.detail else ''}"))
            opened = None
    if opened is not None:
        holds.append(Hold(opened.at, None, f"{what}{': ' + opened.detail if opened.detail else ''}"))
    return holds

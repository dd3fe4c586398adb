"""When each step of a strategy fires for an invoice, and what it decides then.

One set of pure functions serves the scheduler (what is due now?), the handlers (how do
the pending steps stand after this fact?) and the simulator (what will happen, and why?):
`derive` places the steps still undecided, `decide_due` decides those whose time has come,
`simulate` replays both along a timeline of assumed events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from parcours_dunning.domain.calendar import BusinessCalendar
from parcours_dunning.domain.facts import InvoiceFacts
from parcours_dunning.domain.penalties import Penalties, late_payment_penalties
from parcours_dunning.domain.strategy import ENDING_ACTIONS, Step, Strategy

RECEIPT_EVIDENCE = "no delivery.acked or link.clicked seen"


@dataclass(frozen=True)
class Policy:
    """The tenant-independent rules a plan is computed with (from the service's settings)."""

    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    promise_grace_days: int = 3
    ecb_rates: Mapping[date, Decimal] = field(default_factory=lambda: {date(2025, 6, 11): Decimal("2.15")})
    margin_points: Decimal = Decimal(10)
    indemnity: Decimal = Decimal(40)

    def for_zone(self, tz: str | None) -> Policy:
        """The same rules with the sending window read in `tz` (a customer's time zone)."""
        calendar = self.calendar.in_zone(tz)
        return self if calendar is self.calendar else replace(self, calendar=calendar)


@dataclass(frozen=True)
class Occurrence:
    """One firing of a step: the step itself (repeat 0) or one of its repeats."""

    key: str
    step: Step
    sequence: int
    repeat: int = 0
    side: bool = False  # a milestone or custom step: neither supersedes nor is superseded


@dataclass(frozen=True)
class Past:
    """A decided occurrence: what it did and when."""

    state: Literal["emitted", "skipped"]
    at: datetime
    action: str = "reminder"


@dataclass(frozen=True)
class Planned:
    occurrence: Occurrence
    fire_at: datetime | None
    hold: str | None = None  # why it does not fire at fire_at (paused, deferred, anchor unknown)


@dataclass(frozen=True)
class Schedule:
    stop: str | None
    planned: list[Planned]


@dataclass(frozen=True)
class Fire:
    reason: str
    penalties: Penalties | None = None


@dataclass(frozen=True)
class Skip:
    reason: str


Decision = Fire | Skip


@dataclass(frozen=True)
class Decided:
    occurrence: Occurrence
    fire_at: datetime | None
    decision: Decision

    @property
    def key(self) -> str:
        return self.occurrence.key


def occurrences(strategy: Strategy) -> list[Occurrence]:
    out = []
    main = len(strategy.steps)
    for sequence, step in enumerate(strategy.steps + strategy.side_steps, start=1):
        side = sequence > main
        out.append(Occurrence(step.name, step, sequence, side=side))
        for n in range(1, (step.repeat.max if step.repeat else 0) + 1):
            out.append(Occurrence(f"{step.name}#{n + 1}", step, sequence, n, side=side))
    return out


def _anchor(occ: Occurrence, facts: InvoiceFacts, history: Mapping[str, Past],
            cal: BusinessCalendar) -> tuple[date, datetime | None] | str:
    """The anchor's date (and instant, when it is one), or why it is not known yet."""
    anchor = occ.step.anchor
    if anchor == "issue_date":
        return facts.issue_date, None
    if anchor == "due_date":
        return facts.due_date, None
    if anchor == "promised_date":
        return (facts.promised_on, None) if facts.promised_on else "waiting for a payment promise"
    if anchor == "dispatch":
        at = facts.dispatched_at
        return (cal.local_date(at), at) if at else "waiting for the invoice's dispatch"
    if anchor == "receipt":
        receipt = facts.receipt
        return (cal.local_date(receipt.at), receipt.at) if receipt else "waiting for proof of receipt"
    previous = occ.step.name if occ.repeat == 1 else f"{occ.step.name}#{occ.repeat}"
    if occ.repeat and previous not in history:
        return "waiting for the previous occurrence"
    sent = [p.at for p in history.values() if p.state == "emitted" and p.action == "reminder"]
    return (cal.local_date(max(sent)), max(sent)) if sent else "waiting for a first reminder"


def _offset(occ: Occurrence) -> int:
    if not occ.repeat:
        return occ.step.offset_days
    every = occ.step.repeat.every_days
    # after the last reminder, each repeat counts from the previous one; otherwise from the anchor
    return every if occ.step.anchor == "last_reminder" else occ.step.offset_days + occ.repeat * every


def derive(strategy: Strategy, facts: InvoiceFacts, history: Mapping[str, Past], policy: Policy) -> Schedule:
    """Where every undecided occurrence stands: its fire instant and whatever holds it."""
    cal = policy.for_zone(facts.timezone).calendar
    stop = facts.stop()
    holds = facts.holds(promise_grace_days=policy.promise_grace_days, promise_resumes_at=cal.window_start, tz=cal.tz)
    planned = []
    for occ in occurrences(strategy):
        if occ.key in history:
            continue
        anchor = _anchor(occ, facts, history, cal)
        if isinstance(anchor, str):
            planned.append(Planned(occ, None, anchor))
            continue
        day, instant = anchor
        fire_at = cal.opening_of(cal.shift(day, _offset(occ), business=occ.step.days == "business"))
        if instant is not None:
            fire_at = max(fire_at, cal.next_slot(instant))
        hold = None
        for h in holds:
            if h.end is None:
                hold = h.reason
                break
            if fire_at < h.end:  # it would have fired during the hold: the next slot after it
                fire_at = max(fire_at, cal.next_slot(h.end))
        planned.append(Planned(occ, fire_at, hold))
    planned.sort(key=lambda p: (p.fire_at is None, p.fire_at.timestamp() if p.fire_at else 0, p.occurrence.sequence))
    return Schedule(stop[1] if stop else None, planned)


def evaluate(step: Step, facts: InvoiceFacts, now: datetime, policy: Policy) -> Decision:
    """Whether `step` acts now, and why (or why not)."""
    met = []
    for condition in step.conditions:
        kind, value = condition.kind, condition.value
        if kind == "receipt_not_established":
            if (receipt := facts.receipt) is not None:
                return Skip(f"receipt established by {receipt.kind} at {receipt.at.isoformat()}")
            met.append(RECEIPT_EVIDENCE)
        elif kind == "not_viewed":
            if facts.viewed:
                return Skip("the invoice was viewed")
            met.append("not viewed")
        elif kind == "unpaid":
            if facts.open_amount <= 0:
                return Skip("invoice paid")
            met.append(f"{facts.open_amount} {facts.currency} unpaid")
        elif kind == "amount_gte":
            if facts.amount < value:
                return Skip(f"amount {facts.amount} below {value}")
        elif kind == "open_balance_gte":
            if facts.open_amount < value:
                return Skip(f"open balance {facts.open_amount} below {value}")
        elif kind == "not_disputed":
            if facts.disputed:
                return Skip("invoice disputed")
        elif kind == "customer_tag":
            if value not in facts.customer_tags:
                return Skip(f"customer not tagged {value}")
        elif kind == "status_not_reached":
            if (reached := facts.status_reached(condition.codes)) is not None:
                return Skip(f"milestone met: status {reached.code} reached at {reached.at.isoformat()}")
            met.append(f"status {value} not reached")
    reason = f"{step.description or step.name}: {', '.join(met) or 'conditions met'}"
    penalties = None
    if step.penalties:
        penalties = late_payment_penalties(
            open_amount=facts.open_amount, currency=facts.currency, due_date=facts.due_date,
            on=policy.for_zone(facts.timezone).calendar.local_date(now), ecb_rates=policy.ecb_rates, margin_points=policy.margin_points,
            indemnity=policy.indemnity)
        reason += f"; {penalties.describe()}"
    return Fire(reason, penalties)


def decide_due(strategy: Strategy, facts: InvoiceFacts, history: Mapping[str, Past], policy: Policy,
               now: datetime) -> list[Decided]:
    """Decisions for the occurrences whose time has come (all of them once dunning stopped).

    Several reminders fall due at once when an invoice arrives late, a pause ends or the
    scheduler was down: the customer then gets only the latest, not a burst of stale ones."""
    schedule = derive(strategy, facts, history, policy)
    if schedule.stop:
        return [Decided(p.occurrence, p.fire_at, Skip(f"stopped: {schedule.stop}")) for p in schedule.planned]
    due = [p for p in schedule.planned if p.hold is None and p.fire_at is not None and p.fire_at <= now]
    main_line = {o.key: o.sequence for o in occurrences(strategy) if not o.side}
    sent = [key for key, past in history.items() if past.state == "emitted" and past.action == "reminder"]
    decided = []
    for p in due:
        later = [key for key in sent if main_line.get(key, 0) > p.occurrence.sequence]
        if later and p.occurrence.step.action.kind == "reminder" and not p.occurrence.side:
            # e.g. a receipt check whose dispatch came after the curative reminders: too late to make sense
            decided.append(Decided(p.occurrence, p.fire_at, Skip(f"superseded by {later[-1]}, already sent")))
        else:
            decided.append(Decided(p.occurrence, p.fire_at, evaluate(p.occurrence.step, facts, now, policy)))
    firing = [d for d in decided if isinstance(d.decision, Fire)]
    stopper = next((d for d in firing if d.occurrence.step.action.kind in ENDING_ACTIONS), None)
    if stopper is not None:
        rest = [p for p in schedule.planned if p.occurrence.key != stopper.key]
        why = "handed over to collection" if stopper.occurrence.step.action.kind == "handover" else "stopped"
        return [stopper] + [Decided(p.occurrence, p.fire_at, Skip(f"{why} by step {stopper.key}")) for p in rest]
    reminders = [d for d in firing if d.occurrence.step.action.kind == "reminder" and not d.occurrence.side]
    latest = reminders[-1] if reminders else None
    return [Decided(d.occurrence, d.fire_at, Skip(f"superseded by {latest.key}: both fell due at once"))
            if d in reminders and d is not latest else d for d in decided]


@dataclass(frozen=True)
class SimulatedStep:
    step: str
    action: str
    outcome: Literal["reminder", "task", "stop", "handover", "skipped", "waiting"]
    at: datetime | None
    planned_at: datetime | None
    reason: str
    penalties: Penalties | None = None


def outcome_of(decided: Decided) -> str:
    if isinstance(decided.decision, Skip):
        return "skipped"
    return decided.occurrence.step.action.kind


def simulate(strategy: Strategy, facts: InvoiceFacts, policy: Policy, *, start: datetime,
             until: datetime) -> list[SimulatedStep]:
    """The dated plan: each occurrence decided at its time, knowing only the events assumed before it."""
    history: dict[str, Past] = {}
    out: list[SimulatedStep] = []
    now = start
    for _ in range(1000):
        known = facts.known_at(now)
        for d in decide_due(strategy, known, history, policy, now):
            outcome = outcome_of(d)
            history[d.key] = Past("skipped" if outcome == "skipped" else "emitted", now,
                                  d.occurrence.step.action.kind)
            out.append(SimulatedStep(d.key, d.occurrence.step.action.kind, outcome, now, d.fire_at, d.decision.reason,
                                     getattr(d.decision, "penalties", None)))
        schedule = derive(strategy, known, history, policy)
        upcoming = [p.fire_at for p in schedule.planned if p.hold is None and p.fire_at is not None]
        upcoming += [s.at for s in facts.signals if s.at > now]
        if not upcoming or min(upcoming) > until:
            break
        now = max(min(upcoming), now)
    for p in derive(strategy, facts.known_at(now), history, policy).planned:
        out.append(SimulatedStep(p.occurrence.key, p.occurrence.step.action.kind, "waiting", None, p.fire_at,
                                 p.hold or "beyond the simulated period"))
    return out

"""Dunning strategies: which reminders an invoice gets, when, and on what condition.

A strategy is a list of steps placed relative to the invoice's due date. `plan` turns an
invoice's dates into fire instants once, at reception; `evaluate` decides, when a step
falls due, whether it still makes sense given what is known of the invoice by then."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal

Condition = Literal["receipt_not_established", "unpaid"]
RECEIPT_EVIDENCE_KINDS = ("delivery.acked", "link.clicked")


@dataclass(frozen=True)
class Step:
    name: str
    sequence: int
    days_from_due: int
    condition: Condition
    description: str
    min_days_after_issue: int | None = None  # never before the customer can have the invoice


@dataclass(frozen=True)
class Strategy:
    name: str
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"strategy {self.name!r} has no step {name!r}")


DEFAULT_STRATEGY = Strategy(
    name="default",
    steps=(
        Step("pre_due", 1, -7, "receipt_not_established", "receipt check before the due date", min_days_after_issue=1),
        Step("due", 2, 0, "unpaid", "due date reached"),
        Step("overdue", 3, 7, "unpaid", "7 days past the due date"),
    ),
)


@dataclass(frozen=True)
class Receipt:
    """The first evidence that the customer has the invoice."""

    kind: str
    at: datetime


@dataclass(frozen=True)
class InvoiceFacts:
    """What dunning knows of one invoice when it plans or decides."""

    issue_date: date
    due_date: date
    receipt: Receipt | None = None
    paid: bool = False  # no payment events yet: always unpaid in the skeleton


@dataclass(frozen=True)
class PlannedStep:
    step: str
    sequence: int
    fire_at: datetime


@dataclass(frozen=True)
class Fire:
    reason: str


@dataclass(frozen=True)
class Skip:
    reason: str


Decision = Fire | Skip


def step_date(step: Step, *, issue_date: date, due_date: date) -> date:
    """The date a step falls on for an invoice issued and due on these dates."""
    target = due_date + timedelta(days=step.days_from_due)
    if step.min_days_after_issue is not None:
        # A short-term invoice leaves no room for "7 days before": the earliest sensible day wins.
        target = max(target, issue_date + timedelta(days=step.min_days_after_issue))
    return target


def plan(facts: InvoiceFacts, strategy: Strategy = DEFAULT_STRATEGY, *, reminder_hour_utc: int = 8) -> list[PlannedStep]:
    """Every step of `strategy` for this invoice, with the instant it fires, in firing order."""
    fire_time = time(reminder_hour_utc, tzinfo=timezone.utc)
    planned = [
        PlannedStep(step.name, step.sequence,
                    datetime.combine(step_date(step, issue_date=facts.issue_date, due_date=facts.due_date), fire_time))
        for step in strategy.steps
    ]
    return sorted(planned, key=lambda p: (p.fire_at, p.sequence))


def evaluate(step: Step, facts: InvoiceFacts) -> Decision:
    """Whether `step` should send a reminder now, and why (or why not)."""
    if step.condition == "receipt_not_established":
        if facts.receipt is not None:
            return Skip(f"receipt established by {facts.receipt.kind} at {facts.receipt.at.isoformat()}")
        return Fire(f"{step.description}: no {' or '.join(RECEIPT_EVIDENCE_KINDS)} seen")
    if step.condition == "unpaid":
        if facts.paid:
            return Skip("invoice paid")
        return Fire(f"{step.description}: invoice unpaid")
    raise ValueError(f"unknown condition {step.condition!r}")


def decide(due_steps: Iterable[Step], facts: InvoiceFacts) -> dict[str, Decision]:
    """Decisions for the steps of one invoice that fell due together.

    Several steps fall due at once when an invoice arrives late or the scheduler was down:
    the customer then gets only the latest applicable reminder, not a burst of stale ones."""
    steps = sorted(due_steps, key=lambda s: s.sequence)
    decisions = {step.name: evaluate(step, facts) for step in steps}
    firing = [s for s in steps if isinstance(decisions[s.name], Fire)]
    for earlier in firing[:-1]:
        decisions[earlier.name] = Skip(f"superseded by {firing[-1].name}: both fell due at once")
    return decisions


STRATEGIES = {DEFAULT_STRATEGY.name: DEFAULT_STRATEGY}


def known_steps(strategy_name: str, step_names: Iterable[str]) -> list[Step]:
    """The steps of these names that the named strategy has (unknown strategy: none)."""
    strategy = STRATEGIES.get(strategy_name)
    if strategy is None:
        return []
    wanted = set(step_names)
    return [step for step in strategy.steps if step.name in wanted]

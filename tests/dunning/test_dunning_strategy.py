"""The default strategy, the clock and the decision rules: pure, no IO."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from parcours_dunning.domain.clock import SettableClock, SystemClock
from parcours_dunning.domain.strategy import (
    DEFAULT_STRATEGY, Fire, InvoiceFacts, Receipt, Skip, decide, evaluate, known_steps, plan,
)

UTC = timezone.utc


def at8(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 8, tzinfo=UTC)


def test_plan_of_a_thirty_day_invoice():
    facts = InvoiceFacts(issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1))
    assert [(p.step, p.sequence, p.fire_at) for p in plan(facts, DEFAULT_STRATEGY)] == [
        ("pre_due", 1, at8(date(2026, 11, 24))),
        ("due", 2, at8(date(2026, 12, 1))),
        ("overdue", 3, at8(date(2026, 12, 8))),
    ]


def test_steps_fire_at_the_configured_hour():
    facts = InvoiceFacts(issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1))
    assert {p.fire_at.hour for p in plan(facts, reminder_hour_utc=14)} == {14}
    assert all(p.fire_at.tzinfo is not None for p in plan(facts))


@pytest.mark.parametrize("term_days, pre_due", [
    (3, date(2026, 11, 2)),   # due − 7 would be before the issue date: the day after issue instead
    (8, date(2026, 11, 2)),   # due − 7 = issue + 1: the earliest allowed
    (9, date(2026, 11, 3)),   # due − 7 after issue + 1: the rule itself
    (1, date(2026, 11, 2)),   # due the day after issue: the receipt check cannot come earlier
])
def test_pre_due_of_short_term_invoices_is_never_before_the_day_after_issue(term_days, pre_due):
    issue = date(2026, 11, 1)
    facts = InvoiceFacts(issue_date=issue, due_date=issue + timedelta(days=term_days))
    steps = {p.step: p.fire_at for p in plan(facts)}
    assert steps["pre_due"] == at8(pre_due)
    assert steps["pre_due"] > at8(issue)
    assert steps["pre_due"] <= steps["due"]
    assert steps["due"] == at8(issue + timedelta(days=term_days))


def test_pre_due_fires_without_receipt_and_is_skipped_with_it():
    pre_due = DEFAULT_STRATEGY.step("pre_due")
    bare = InvoiceFacts(issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1))
    decision = evaluate(pre_due, bare)
    assert isinstance(decision, Fire) and "no delivery.acked or link.clicked" in decision.reason

    clicked_at = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    seen = InvoiceFacts(issue_date=bare.issue_date, due_date=bare.due_date, receipt=Receipt("link.clicked", clicked_at))
    assert evaluate(pre_due, seen) == Skip(f"receipt established by link.clicked at {clicked_at.isoformat()}")


def test_due_and_overdue_fire_while_unpaid_even_with_receipt():
    facts = InvoiceFacts(issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1),
                         receipt=Receipt("delivery.acked", datetime(2026, 11, 2, tzinfo=UTC)))
    for name in ("due", "overdue"):
        assert isinstance(evaluate(DEFAULT_STRATEGY.step(name), facts), Fire)
    paid = InvoiceFacts(issue_date=facts.issue_date, due_date=facts.due_date, paid=True)
    assert evaluate(DEFAULT_STRATEGY.step("due"), paid) == Skip("invoice paid")


def test_steps_falling_due_together_send_only_the_latest():
    facts = InvoiceFacts(issue_date=date(2026, 9, 1), due_date=date(2026, 10, 1))
    steps = [DEFAULT_STRATEGY.step(n) for n in ("overdue", "pre_due", "due")]  # any order
    decisions = decide(steps, facts)
    assert isinstance(decisions["overdue"], Fire)
    assert decisions["pre_due"] == Skip("superseded by overdue: both fell due at once")
    assert decisions["due"] == Skip("superseded by overdue: both fell due at once")


def test_a_skipped_step_does_not_supersede_a_firing_one():
    facts = InvoiceFacts(issue_date=date(2026, 11, 1), due_date=date(2026, 11, 2),
                         receipt=Receipt("link.clicked", datetime(2026, 11, 1, 12, tzinfo=UTC)))
    decisions = decide([DEFAULT_STRATEGY.step("pre_due"), DEFAULT_STRATEGY.step("due")], facts)
    assert isinstance(decisions["pre_due"], Skip) and "link.clicked" in decisions["pre_due"].reason
    assert isinstance(decisions["due"], Fire)


def test_a_single_due_step_is_decided_on_its_own_condition():
    facts = InvoiceFacts(issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1))
    assert isinstance(decide([DEFAULT_STRATEGY.step("pre_due")], facts)["pre_due"], Fire)
    assert decide([], facts) == {}


def test_settable_clock_sets_advances_and_refuses_naive_times():
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    clock = SettableClock(start)
    assert clock.now() == start
    assert clock.advance(timedelta(days=3)) == start + timedelta(days=3)
    paris = timezone(timedelta(hours=1))
    assert clock.set(datetime(2026, 12, 1, 9, tzinfo=paris)) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert clock.now().tzinfo == UTC
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 12, 1))
    assert clock.now() == datetime(2026, 12, 1, 8, tzinfo=UTC), "a refused time changes nothing"


def test_system_clock_is_aware_and_current():
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is not None and before <= now <= datetime.now(UTC)


def test_known_steps_ignores_unknown_strategies_and_steps():
    assert [s.name for s in known_steps("default", ["overdue", "gone", "pre_due"])] == ["pre_due", "overdue"]
    assert known_steps("retired-strategy", ["due"]) == []

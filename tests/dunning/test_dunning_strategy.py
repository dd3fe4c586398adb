"""Strategies, the planner and the simulator: pure, no IO."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from parcours_runtime.clock import SettableClock, SystemClock
from parcours_dunning.domain.facts import InvoiceFacts, Signal
from parcours_dunning.domain.planner import Fire, Past, Policy, Skip, decide_due, derive, occurrences, simulate
from parcours_dunning.domain.strategy import DEFAULT_STRATEGY, Strategy, StrategySpec

UTC = timezone.utc
POLICY = Policy()


def paris_8(day: date) -> datetime:
    """08:00 in Paris (the sending window's opening), as UTC."""
    offset = 1 if day.month in (1, 2, 3, 11, 12) or (day.month == 10 and day.day > 25) else 2
    return datetime(day.year, day.month, day.day, 8 - offset, tzinfo=UTC)


def invoice(issue=date(2026, 12, 1), due=date(2026, 12, 31), amount="1200.00", *signals: Signal) -> InvoiceFacts:
    return InvoiceFacts(issue_date=issue, due_date=due, amount=Decimal(amount), signals=signals)


DISPATCHED = Signal(at=datetime(2026, 12, 1, 10, tzinfo=UTC), kind="dispatched")


def fire_times(facts, history=None):
    return {p.occurrence.key: (p.fire_at, p.hold) for p in derive(DEFAULT_STRATEGY, facts, history or {}, POLICY).planned}


def test_default_french_b2b_plan_on_business_days_and_in_the_sending_window():
    assert fire_times(invoice(date(2026, 12, 1), date(2026, 12, 31), "1200.00", DISPATCHED)) == {
        "pre_due": (paris_8(date(2026, 12, 3)), None),        # dispatch (Tue) + 2 business days
        "preventive": (paris_8(date(2026, 12, 28)), None),    # J-5 = Sat 26 → Monday 28
        "curative_1": (paris_8(date(2027, 1, 4)), None),      # J+3 = Sun 3 Jan → Monday 4
        "curative_2": (paris_8(date(2027, 1, 11)), None),
        "formal_notice": (paris_8(date(2027, 1, 20)), None),
    }


def test_the_receipt_check_waits_for_the_dispatch():
    planned = fire_times(invoice())
    assert planned["pre_due"] == (None, "waiting for the invoice's dispatch")
    assert planned["preventive"][1] is None


def test_pre_due_fires_without_receipt_and_is_skipped_with_it():
    facts = invoice(date(2026, 12, 1), date(2026, 12, 31), "1200.00", DISPATCHED)
    [decided] = decide_due(DEFAULT_STRATEGY, facts, {}, POLICY, paris_8(date(2026, 12, 3)))
    assert decided.key == "pre_due" and isinstance(decided.decision, Fire)
    assert "no delivery.acked or link.clicked seen" in decided.decision.reason

    clicked = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    seen = facts.with_signals(Signal(at=clicked, kind="viewed"))
    [decided] = decide_due(DEFAULT_STRATEGY, seen, {}, POLICY, paris_8(date(2026, 12, 3)))
    assert decided.decision == Skip(f"receipt established by link.clicked at {clicked.isoformat()}")
    lifecycle = facts.with_signals(Signal(at=clicked, kind="lifecycle", code=204, status="PRISE_EN_CHARGE"))
    assert "lifecycle 204" in decide_due(DEFAULT_STRATEGY, lifecycle, {}, POLICY, paris_8(date(2026, 12, 3)))[0].decision.reason


def test_steps_falling_due_together_send_only_the_latest():
    facts = invoice(date(2026, 9, 1), date(2026, 10, 1), "100", Signal(at=datetime(2026, 9, 1, 9, tzinfo=UTC), kind="dispatched"))
    decided = {d.key: d.decision for d in decide_due(DEFAULT_STRATEGY, facts, {}, POLICY, datetime(2026, 10, 5, 12, tzinfo=UTC))}
    assert isinstance(decided["curative_1"], Fire)
    assert decided["pre_due"] == decided["preventive"] == Skip("superseded by curative_1: both fell due at once")
    assert "curative_2" not in decided


def test_lifecycle_stops_pauses_and_resumes():
    facts = invoice(date(2026, 12, 1), date(2026, 12, 31), "1200.00", DISPATCHED)
    disputed = facts.with_signals(Signal(at=datetime(2026, 12, 20, tzinfo=UTC), kind="lifecycle", code=207, status="EN_LITIGE"))
    assert {hold for _, hold in fire_times(disputed).values()} == {"paused: disputed (207 EN_LITIGE)"}
    assert decide_due(DEFAULT_STRATEGY, disputed, {}, POLICY, datetime(2027, 2, 1, tzinfo=UTC)) == []

    # approved on 12 January: what fell due meanwhile moves to the next slot, the rest keeps its date
    resumed = disputed.with_signals(Signal(at=datetime(2027, 1, 12, 15, tzinfo=UTC), kind="lifecycle", code=205, status="APPROUVEE"))
    planned = fire_times(resumed)
    assert planned["preventive"] == planned["curative_1"] == planned["curative_2"] == (datetime(2027, 1, 12, 15, tzinfo=UTC), None)
    assert planned["formal_notice"] == (paris_8(date(2027, 1, 20)), None)

    refused = facts.with_signals(Signal(at=datetime(2026, 12, 5, tzinfo=UTC), kind="lifecycle", code=210, status="REFUSEE"))
    assert {d.decision for d in decide_due(DEFAULT_STRATEGY, refused, {}, POLICY, datetime(2026, 12, 5, tzinfo=UTC))} == {
        Skip("stopped: refused (210 REFUSEE)")}
    cashed = facts.with_signals(Signal(at=datetime(2026, 12, 5, tzinfo=UTC), kind="lifecycle", code=212))
    assert derive(DEFAULT_STRATEGY, cashed, {}, POLICY).stop == "cashed (212 ENCAISSEE)"


def test_payments_recompute_the_open_amount_and_stop_when_paid():
    partial = invoice(date(2026, 12, 1), date(2026, 12, 31), "1200.00", DISPATCHED,
                      Signal(at=datetime(2026, 12, 10, tzinfo=UTC), kind="payment", open_amount=Decimal("700.00")))
    assert partial.open_amount == Decimal("700.00")
    decided = decide_due(DEFAULT_STRATEGY, partial, {"pre_due": Past("emitted", paris_8(date(2026, 12, 3)))}, POLICY,
                         paris_8(date(2027, 1, 4)))
    assert [d.key for d in decided if isinstance(d.decision, Fire)] == ["curative_1"]
    assert "700.00 EUR unpaid" in decided[-1].decision.reason
    paid = partial.with_signals(Signal(at=datetime(2026, 12, 20, tzinfo=UTC), kind="payment", open_amount=Decimal(0), fully_paid=True))
    assert derive(DEFAULT_STRATEGY, paid, {}, POLICY).stop == "paid in full"


def test_a_promise_pauses_until_its_date_plus_grace():
    facts = invoice(date(2026, 12, 1), date(2026, 12, 31), "1200.00", DISPATCHED,
                    Signal(at=datetime(2026, 12, 29, tzinfo=UTC), kind="promise", promised_on=date(2027, 1, 8)))
    planned = fire_times(facts, {"pre_due": Past("emitted", paris_8(date(2026, 12, 3)))})
    # 8 January + 3 days of grace = Monday 11 January at the window's opening
    assert planned["preventive"] == planned["curative_1"] == planned["curative_2"] == (paris_8(date(2027, 1, 11)), None)


def test_a_failed_delivery_defers_until_a_fallback_delivered():
    failed = invoice(date(2026, 12, 1), date(2026, 12, 31), "1200.00", DISPATCHED,
                     Signal(at=datetime(2026, 12, 2, tzinfo=UTC), kind="delivery_failed", detail="email_link bounced"))
    assert fire_times(failed)["preventive"] == (paris_8(date(2026, 12, 28)), "deferred until a fallback delivers: email_link bounced")
    delivered = failed.with_signals(Signal(at=datetime(2027, 1, 5, 16, 30, tzinfo=UTC), kind="dispatched", purpose="reminder"))
    # Tuesday 5 January 17:30 in Paris: inside the window, so at once
    assert fire_times(delivered)["preventive"] == (datetime(2027, 1, 5, 16, 30, tzinfo=UTC), None)


def test_operator_exclusion_stops_and_pause_holds():
    facts = invoice(date(2026, 12, 1), date(2026, 12, 31), "1200.00", DISPATCHED)
    paused = facts.with_signals(Signal(at=datetime(2026, 12, 2, tzinfo=UTC), kind="pause", detail="call first"))
    assert fire_times(paused)["preventive"][1] == "paused by an operator: call first"
    excluded = facts.with_signals(Signal(at=datetime(2026, 12, 2, tzinfo=UTC), kind="exclude"))
    assert derive(DEFAULT_STRATEGY, excluded, {}, POLICY).stop == "excluded from dunning"


def spec(**step) -> StrategySpec:
    return StrategySpec.model_validate({"name": "test", "steps": [step]})


def test_strategy_specs_are_validated():
    good = spec(name="nudge", anchor="due_date", offset_days=2, days="business",
                conditions=[{"kind": "open_balance_gte", "value": "50"}], action={"kind": "reminder", "template": "t"},
                repeat={"every_days": 7, "max": 2})
    assert good.steps[0].conditions[0].value == Decimal("50")
    for bad in ({"anchor": "tomorrow"}, {"offset_days": 400}, {"action": {"kind": "fax"}},
                {"conditions": [{"kind": "amount_gte"}]}, {"action": {"kind": "task", "task": "sing"}},
                {"repeat": {"every_days": 0, "max": 1}}):
        with pytest.raises(ValidationError):
            spec(**{"name": "s", "anchor": "due_date", "action": {"kind": "stop"}, **bad})
    with pytest.raises(ValidationError, match="unique"):
        StrategySpec.model_validate({"name": "dup", "steps": [good.steps[0].model_dump(), good.steps[0].model_dump()]})


def test_repeats_conditions_and_the_last_reminder_anchor():
    strategy = Strategy(id="s", version=1, spec=StrategySpec.model_validate({"name": "s", "steps": [
        {"name": "first", "anchor": "due_date", "offset_days": 1, "action": {"kind": "reminder", "template": "t"},
         "conditions": [{"kind": "amount_gte", "value": "1000"}]},
        {"name": "again", "anchor": "last_reminder", "offset_days": 7, "action": {"kind": "reminder", "template": "t"},
         "repeat": {"every_days": 7, "max": 2}},
        {"name": "end", "anchor": "due_date", "offset_days": 60, "action": {"kind": "stop"}},
    ]}))
    assert [o.key for o in occurrences(strategy)] == ["first", "again", "again#2", "again#3", "end"]
    facts = invoice(date(2026, 6, 1), date(2026, 7, 1), "1200.00")
    plan = simulate(strategy, facts, POLICY, start=datetime(2026, 6, 1, tzinfo=UTC), until=datetime(2026, 12, 1, tzinfo=UTC))
    assert [(s.step, s.outcome, s.at) for s in plan] == [
        ("first", "reminder", paris_8(date(2026, 7, 2))),
        ("again", "reminder", paris_8(date(2026, 7, 9))),
        ("again#2", "reminder", paris_8(date(2026, 7, 16))),
        ("again#3", "reminder", paris_8(date(2026, 7, 23))),
        ("end", "stop", paris_8(date(2026, 8, 31))),   # 30 August is a Sunday
    ]
    small = simulate(strategy, invoice(date(2026, 6, 1), date(2026, 7, 1), "10.00"), POLICY,
                     start=datetime(2026, 6, 1, tzinfo=UTC), until=datetime(2026, 12, 1, tzinfo=UTC))
    assert (small[0].step, small[0].outcome, small[0].reason) == ("first", "skipped", "amount 10.00 below 1000")
    assert (small[1].step, small[1].outcome, small[1].at) == ("end", "stop", paris_8(date(2026, 8, 31)))
    assert [(s.step, s.outcome, s.reason) for s in small[2:]] == [
        (s, "skipped", "stopped by step end") for s in ("again", "again#2", "again#3")]


def test_simulate_the_default_strategy_with_assumed_events():
    facts = invoice(date(2026, 12, 1), date(2026, 12, 31), "1200.00", DISPATCHED,
                    Signal(at=datetime(2026, 12, 2, 9, tzinfo=UTC), kind="acked"),
                    Signal(at=datetime(2027, 1, 6, 9, tzinfo=UTC), kind="payment", open_amount=Decimal("200.00")),
                    Signal(at=datetime(2027, 1, 15, 9, tzinfo=UTC), kind="payment", open_amount=Decimal(0), fully_paid=True))
    plan = simulate(DEFAULT_STRATEGY, facts, POLICY, start=datetime(2026, 12, 1, tzinfo=UTC),
                    until=datetime(2027, 6, 1, tzinfo=UTC))
    got = [(s.step, s.outcome, s.at) for s in plan]
    assert got == [
        ("pre_due", "skipped", paris_8(date(2026, 12, 3))),
        ("preventive", "reminder", paris_8(date(2026, 12, 28))),
        ("curative_1", "reminder", paris_8(date(2027, 1, 4))),
        ("curative_2", "reminder", paris_8(date(2027, 1, 11))),
        ("formal_notice", "skipped", datetime(2027, 1, 15, 9, tzinfo=UTC)),
    ]
    assert plan[0].reason.startswith("receipt established by delivery.acked")
    assert plan[2].penalties.interest == Decimal("1.60") and plan[2].penalties.days_late == 4
    assert plan[3].penalties.base == Decimal("200.00"), "interest runs on the open amount after the partial payment"
    assert plan[4].reason == "stopped: paid in full"


def test_settable_clock_sets_advances_and_refuses_naive_times():
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    clock = SettableClock(start)
    assert clock.advance(timedelta(days=3)) == start + timedelta(days=3)
    assert clock.set(datetime(2026, 12, 1, 9, tzinfo=timezone(timedelta(hours=1)))) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 12, 1))
    assert clock.now() == datetime(2026, 12, 1, 8, tzinfo=UTC), "a refused time changes nothing"
    assert SystemClock().now().tzinfo is not None

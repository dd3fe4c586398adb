"""Milestones, reminder tone, hand-over to collection, customer time zones, custom steps and
customer-wide pauses in the planner: pure, no IO."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from parcours_dunning.domain.facts import InvoiceFacts, Signal
from parcours_dunning.domain.planner import Fire, Past, Policy, Skip, decide_due, derive, simulate
from parcours_dunning.domain.strategy import DEFAULT_STRATEGY, Step, Strategy, StrategySpec

UTC = timezone.utc
POLICY = Policy()
PARIS, MONTREAL = ZoneInfo("Europe/Paris"), ZoneInfo("America/Montreal")
DISPATCHED = Signal(at=datetime(2026, 12, 1, 10, tzinfo=UTC), kind="dispatched")
RECEIVED = Signal(at=datetime(2026, 12, 2, 9, tzinfo=UTC), kind="acked")


def local(day: date, hour: int, tz=PARIS) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(UTC)


def facts(*signals: Signal, tz: str | None = None) -> InvoiceFacts:
    return InvoiceFacts(issue_date=date(2026, 12, 1), due_date=date(2026, 12, 31), amount=Decimal("1200.00"),
                        signals=(DISPATCHED, *signals), timezone=tz)


def strategy(**spec) -> Strategy:
    return Strategy(id="jalons", version=1, spec=StrategySpec.model_validate({"name": "with milestones", **spec}))


APPROVAL = strategy(
    steps=[{"name": "curative", "anchor": "due_date", "offset_days": 3, "conditions": [{"kind": "unpaid"}],
            "action": {"kind": "reminder", "template": "curative"}},
           {"name": "late", "anchor": "due_date", "offset_days": 20, "action": {"kind": "reminder", "template": "late"}},
           {"name": "collect", "anchor": "due_date", "offset_days": 45,
            "action": {"kind": "handover", "agency": "Recouvre SA"}}],
    milestones=[{"name": "approval", "expect": [205, 211], "anchor": "receipt", "within_days": 15,
                 "action": {"kind": "task", "task": "call"}}])


def test_a_missed_milestone_triggers_its_own_step():
    received = facts(RECEIVED)
    planned = {p.occurrence.key: p.fire_at for p in derive(APPROVAL, received, {}, POLICY).planned}
    assert planned["approval"] == local(date(2026, 12, 17), 8), "receipt (2 Dec) + 15 days, at the window's opening"

    [missed] = decide_due(APPROVAL, received, {}, POLICY, local(date(2026, 12, 17), 9))
    assert missed.key == "approval" and isinstance(missed.decision, Fire)
    assert "status 205,211 not reached" in missed.decision.reason

    approved = received.with_signals(Signal(at=datetime(2026, 12, 10, tzinfo=UTC), kind="lifecycle", code=205))
    [met] = decide_due(APPROVAL, approved, {}, POLICY, local(date(2026, 12, 17), 9))
    assert met.decision == Skip("milestone met: status 205 reached at 2026-12-10T00:00:00+00:00")


def test_a_milestone_waits_for_its_anchor_and_stands_aside_the_main_line():
    assert {p.occurrence.key: p.hold for p in derive(APPROVAL, facts(), {}, POLICY).planned}["approval"] == \
        "waiting for proof of receipt"
    # received late: the milestone falls due with the curative reminder; neither supersedes the other
    late = facts(Signal(at=datetime(2026, 12, 20, 9, tzinfo=UTC), kind="acked"))
    decided = {d.key: d.decision for d in decide_due(APPROVAL, late, {}, POLICY, local(date(2027, 1, 5), 9))}
    assert isinstance(decided["curative"], Fire) and isinstance(decided["approval"], Fire)


def test_milestones_and_conditions_are_validated():
    with pytest.raises(ValidationError, match="between 200 and 213"):
        strategy(steps=APPROVAL.spec.model_dump()["steps"],
                 milestones=[{"name": "m", "expect": [999], "within_days": 3, "action": {"kind": "stop"}}])
    with pytest.raises(ValidationError, match="unique"):
        strategy(steps=APPROVAL.spec.model_dump()["steps"],
                 milestones=[{"name": "late", "expect": [205], "within_days": 3, "action": {"kind": "stop"}}])
    with pytest.raises(ValidationError, match="lifecycle codes"):
        Step.model_validate({"name": "s", "anchor": "due_date", "action": {"kind": "stop"},
                             "conditions": [{"kind": "status_not_reached", "value": "approved"}]})


def test_tone_escalates_by_step_unless_the_step_says():
    assert [DEFAULT_STRATEGY.tone_of(s) for s in DEFAULT_STRATEGY.steps if s.action.kind == "reminder"] == [
        "gentle", "gentle", "firm", "final"]
    assert [APPROVAL.tone_of(APPROVAL.step(name)) for name in ("curative", "late")] == ["gentle", "firm"]


def test_hand_over_to_collection_ends_dunning():
    history = {"curative": Past("emitted", local(date(2027, 1, 4), 8)), "late": Past("emitted", local(date(2027, 1, 20), 8))}
    decided = decide_due(APPROVAL, facts(RECEIVED, Signal(at=datetime(2026, 12, 10, tzinfo=UTC), kind="lifecycle",
                                                         code=205)), history, POLICY, local(date(2027, 2, 15), 9))
    assert [(d.key, d.decision) for d in decided][1:] == [
        ("approval", Skip("handed over to collection by step collect"))], "an undecided milestone ends with it"
    assert decided[0].key == "collect" and isinstance(decided[0].decision, Fire)
    plan = simulate(APPROVAL, facts(), POLICY, start=local(date(2026, 12, 1), 0), until=local(date(2027, 3, 31), 0))
    assert [(s.step, s.outcome) for s in plan] == [
        ("curative", "reminder"), ("late", "reminder"), ("collect", "handover"), ("approval", "skipped")]
    assert plan[-1].reason == "handed over to collection by step collect"


def test_the_sending_window_is_the_customers():
    paris = {p.occurrence.key: p.fire_at for p in derive(DEFAULT_STRATEGY, facts(), {}, POLICY).planned}
    montreal = {p.occurrence.key: p.fire_at for p in derive(DEFAULT_STRATEGY, facts(tz="America/Montreal"), {},
                                                             POLICY).planned}
    assert paris["curative_1"] == local(date(2027, 1, 4), 8)
    assert montreal["curative_1"] == local(date(2027, 1, 4), 8, MONTREAL), "08:00 in Montreal, 14:00 in Paris"
    # dispatched Tuesday 1 Dec at 10:00 UTC = 05:00 in Montreal: two business days later at its opening
    assert montreal["pre_due"] == local(date(2026, 12, 3), 8, MONTREAL)


def test_custom_steps_and_customer_pauses():
    custom = DEFAULT_STRATEGY.with_custom_steps([Step(
        name="phone_first", anchor="due_date", offset_days=1, action={"kind": "task", "task": "call"})])
    planned = {p.occurrence.key: p.fire_at for p in derive(custom, facts(), {}, POLICY).planned}
    assert planned["phone_first"] == local(date(2027, 1, 4), 8), "due + 1 = 1 January, a holiday: the next slot"
    assert planned["curative_1"] == local(date(2027, 1, 4), 8)
    # a custom reminder sent does not make the strategy's earlier steps pointless
    extra = DEFAULT_STRATEGY.with_custom_steps([Step(name="early_call", anchor="issue_date", offset_days=1,
                                                     action={"kind": "reminder", "template": "t"})])
    history = {"early_call": Past("emitted", local(date(2026, 12, 2), 8))}
    [pre_due] = decide_due(extra, facts(), history, POLICY, local(date(2026, 12, 3), 9))
    assert pre_due.key == "pre_due" and isinstance(pre_due.decision, Fire)

    paused = facts(Signal(at=datetime(2026, 12, 2, tzinfo=UTC), kind="customer_pause", detail="negotiation"),
                   Signal(at=datetime(2026, 12, 2, 1, tzinfo=UTC), kind="pause"),
                   Signal(at=datetime(2026, 12, 3, tzinfo=UTC), kind="resume"))
    holds = {p.hold for p in derive(DEFAULT_STRATEGY, paused, {}, POLICY).planned}
    assert holds == {"customer paused by an operator: negotiation"}, "an invoice resume does not lift the customer's"
    resumed = paused.with_signals(Signal(at=datetime(2027, 1, 6, 10, tzinfo=UTC), kind="customer_resume"))
    assert {p.hold for p in derive(DEFAULT_STRATEGY, resumed, {}, POLICY).planned} == {None}

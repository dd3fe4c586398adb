"""The optional contract fields dunning reads and fills: credit notes (type 381) get no plan,
curative ReminderDue events carry their penalties, and reminders name the step's channel and template."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from parcours_runtime.clock import SettableClock

from parcours_dunning.domain.penalties import late_payment_penalties

UTC = timezone.utc
ISSUE, DUE = date(2026, 12, 1), date(2026, 12, 31)
DISPATCHED_AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


async def start_dunning(run_service):
    host = await run_service("dunning", time_travel=True, tick_seconds=3600)
    clock = SettableClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    host.ctx.extras["clock"] = clock
    return host, clock


async def test_a_credit_note_gets_no_reminder_plan(run_service, publish, build, client_for, wait_for_plan,
                                                   published_reminders):
    host, clock = await start_dunning(run_service)
    acme = await client_for(host, "acme")
    invoice = build.invoice_received(issue=ISSUE, due=DUE, number="INV-380")
    received = build.invoice_received(issue=ISSUE, due=DUE, number="AV-1")
    credit = received.model_copy(update={"invoice": received.invoice.model_copy(update={"type_code": "381"})})
    await publish(invoice, credit, build.invoice_dispatched(invoice, at=DISPATCHED_AT),
                  build.invoice_dispatched(credit, at=DISPATCHED_AT))

    plan = await wait_for_plan(acme, credit.invoice_id, lambda p: p["dispatched_at"] is not None)
    assert plan["steps"] == []
    assert [(a["kind"], a["detail"]) for a in plan["audit"]] == [
        ("skipped", "credit note (type 381): no reminder plan")]
    assert len((await wait_for_plan(acme, invoice.invoice_id))["steps"]) == 5, "a 380 invoice is planned"

    # a later fact does not plan it either, and the scheduler sends nothing for it
    clock.set(build.paris_8(date(2027, 1, 4)) + timedelta(hours=2))
    await publish(build.payment(credit, "10.00", "110.00", clock.now()))
    await wait_for_plan(acme, invoice.invoice_id)
    emitted = (await host.ctx.extras["scheduler"].run_once()).emitted
    assert [d.invoice_id for d in emitted] == [invoice.invoice_id]
    assert (await wait_for_plan(acme, credit.invoice_id))["steps"] == []
    assert {r.invoice_id for r in await published_reminders(host)} & {credit.invoice_id} == set()


async def test_curative_reminders_carry_penalties_channel_and_template(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock = await start_dunning(run_service)
    acme = await client_for(host, "acme")
    by_letter = {"name": "Letters", "steps": [{"name": "only", "anchor": "due_date", "offset_days": 1,
                                              "action": {"kind": "reminder", "template": "gentle", "channel": "letter"}}]}
    assert (await acme.post("/v1/strategies", json={"id": "letters", **by_letter})).status_code == 201
    lettered_id = uuid.uuid4()
    assert (await acme.put(f"/v1/assignments/invoices/{lettered_id}", json={"strategy_id": "letters"})).status_code == 200

    default = build.invoice_received(issue=ISSUE, due=DUE, number="INV-CUR")
    lettered = build.invoice_received(issue=ISSUE, due=DUE, number="INV-LET", invoice_id=lettered_id)
    await publish(default, lettered, build.invoice_dispatched(default, at=DISPATCHED_AT))
    await wait_for_plan(acme, default.invoice_id, lambda p: p["dispatched_at"] is not None)
    await wait_for_plan(acme, lettered_id)

    clock.set(build.paris_8(date(2027, 1, 4)) + timedelta(hours=2))
    emitted = (await host.ctx.extras["scheduler"].run_once()).emitted
    assert sorted((d.invoice_id == lettered_id, d.step) for d in emitted) == [(False, "curative_1"), (True, "only")]

    reminders = {r.invoice_id: r for r in await published_reminders(host)}
    curative = reminders[default.invoice_id]
    assert (curative.reminder.step, curative.reminder.template, curative.reminder.channel) == (
        "curative_1", "curative", None)
    policy = host.ctx.extras["policy"]
    expected = late_payment_penalties(open_amount=Decimal("120.00"), currency="EUR", due_date=DUE, on=date(2027, 1, 4),
                                      ecb_rates=policy.ecb_rates, margin_points=policy.margin_points,
                                      indemnity=policy.indemnity)
    assert curative.penalties is not None
    assert (curative.penalties.indemnity, curative.penalties.days_late, curative.penalties.base) == (
        Decimal("40.00"), 4, Decimal("120.00"))
    assert (curative.penalties.interest, curative.penalties.rate) == (expected.interest, expected.rate)
    assert curative.penalties.interest > 0

    plain = reminders[lettered_id]
    assert (plain.reminder.template, plain.reminder.channel, plain.penalties) == ("gentle", "letter", None)


async def test_customer_tag_conditions_match_the_directory_tags_not_the_group(
        run_service, publish, build, client_for, wait_for_plan):
    from sqlalchemy import func, select

    from parcours_contracts import CustomerChanged
    from parcours_dunning.store.strategies import Customer

    host, clock = await start_dunning(run_service)
    acme = await client_for(host, "acme")
    vip_only = {"name": "VIP", "steps": [{"name": "vip_call", "anchor": "due_date", "offset_days": 1,
                                          "conditions": [{"kind": "customer_tag", "value": "vip"}],
                                          "action": {"kind": "reminder", "template": "vip"}}]}
    assert (await acme.post("/v1/strategies", json={"id": "vip", **vip_only})).status_code == 201
    await publish(
        CustomerChanged(tenant_id="acme", correlation_id="c-1", customer_ref="TAGGED", group="smb", tags=["vip"]),
        CustomerChanged(tenant_id="acme", correlation_id="c-2", customer_ref="GROUPED", group="vip", tags=[]))

    async def customers_known():
        async with host.ctx.sessions() as session:
            return (await session.execute(select(func.count()).select_from(Customer))).scalar_one() == 2
    await build.eventually(customers_known)

    invoices = {ref: build.invoice_received(issue=ISSUE, due=DUE, customer_ref=ref) for ref in ("TAGGED", "GROUPED")}
    for invoice in invoices.values():
        assigned = await acme.put(f"/v1/assignments/invoices/{invoice.invoice_id}", json={"strategy_id": "vip"})
        assert assigned.status_code == 200
    await publish(*invoices.values())
    for invoice in invoices.values():
        await wait_for_plan(acme, invoice.invoice_id)

    clock.set(build.paris_8(date(2027, 1, 4)) + timedelta(hours=2))
    outcome = await host.ctx.extras["scheduler"].run_once()
    assert [d.invoice_id for d in outcome.emitted] == [invoices["TAGGED"].invoice_id]
    grouped = await wait_for_plan(acme, invoices["GROUPED"].invoice_id)
    assert [(s["state"], s["reason"]) for s in grouped["steps"]] == [("skipped", "customer not tagged vip")]

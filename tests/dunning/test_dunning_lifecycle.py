"""The invoice's life drives its reminders, with real events through the broker: disputes
pause and approval resumes, refusal and payment stop, partial payments recompute the open
amount, promises pause until their date plus grace, failed deliveries defer."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from parcours_contracts import LifecycleStatus
from parcours_runtime.clock import SettableClock

UTC = timezone.utc
ISSUE, DUE = date(2026, 12, 1), date(2026, 12, 31)
DISPATCHED_AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


async def start(run_service, publish, build, client_for, wait_for_plan, *numbers, amount="1200.00"):
    host = await run_service("dunning", time_travel=True, tick_seconds=3600)
    clock = host.ctx.extras["clock"] = SettableClock(DISPATCHED_AT)
    invoices = [build.invoice_received(issue=ISSUE, due=DUE, number=n, amount=amount) for n in numbers]
    await publish(*invoices, *(build.invoice_dispatched(i, at=DISPATCHED_AT) for i in invoices))
    acme = await client_for(host, "acme")
    for invoice in invoices:
        await wait_for_plan(acme, invoice.invoice_id, lambda p: p["dispatched_at"] is not None)
    return host, clock, acme, invoices


def states(plan) -> dict[str, tuple[str, str | None]]:
    return {s["step"]: (s["state"], s["reason"]) for s in plan["steps"]}


async def test_a_dispute_pauses_and_approval_resumes_at_the_next_slot(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock, acme, [invoice] = await start(run_service, publish, build, client_for, wait_for_plan, "DISPUTED")
    scheduler = host.ctx.extras["scheduler"]
    clock.set(datetime(2026, 12, 3, 9, tzinfo=UTC))
    assert [d.step for d in (await scheduler.run_once()).emitted] == ["pre_due"]

    await publish(build.lifecycle(invoice, LifecycleStatus.EN_LITIGE, datetime(2026, 12, 20, 10, tzinfo=UTC)))
    plan = await wait_for_plan(acme, invoice.invoice_id, lambda p: p["status"] == "paused")
    held = {step: s for step, s in states(plan).items() if step != "pre_due"}
    assert set(held.values()) == {("paused", "paused: disputed (207 EN_LITIGE)")}
    assert any(a["kind"] == "paused" and "disputed" in a["detail"] for a in plan["audit"])

    clock.set(datetime(2027, 1, 8, 9, tzinfo=UTC))
    assert (await scheduler.run_once()).emitted == [], "nothing fires while disputed"

    resumed_at = datetime(2027, 1, 12, 15, tzinfo=UTC)
    await publish(build.lifecycle(invoice, LifecycleStatus.APPROUVEE, resumed_at))
    plan = await wait_for_plan(acme, invoice.invoice_id, lambda p: p["status"] == "active")
    fire_at = {s["step"]: datetime.fromisoformat(s["fire_at"]) for s in plan["steps"]}
    assert fire_at["preventive"] == fire_at["curative_1"] == fire_at["curative_2"] == resumed_at
    assert fire_at["formal_notice"] == build.paris_8(date(2027, 1, 20)), "a step not yet due keeps its date"

    clock.set(datetime(2027, 1, 12, 15, 30, tzinfo=UTC))
    decided = await scheduler.run_once()
    assert [d.step for d in decided.emitted] == ["curative_2"]
    assert sorted(d.step for d in decided.skipped) == ["curative_1", "preventive"]
    assert [r.reminder.step for r in await published_reminders(host)] == ["pre_due", "curative_2"]


async def test_refusal_stops_and_opens_a_review_task_and_cashing_stops(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock, acme, [refused, cashed] = await start(run_service, publish, build, client_for, wait_for_plan,
                                                       "REFUSED", "CASHED")
    await publish(build.lifecycle(refused, LifecycleStatus.REFUSEE, datetime(2026, 12, 2, 10, tzinfo=UTC)),
                  build.lifecycle(cashed, LifecycleStatus.ENCAISSEE, datetime(2026, 12, 2, 10, tzinfo=UTC)))
    plan = await wait_for_plan(acme, refused.invoice_id, lambda p: p["status"].startswith("stopped"))
    assert plan["status"] == "stopped: refused (210 REFUSEE)"
    assert set(states(plan).values()) == {("skipped", "stopped: refused (210 REFUSEE)")}
    assert [(t["kind"], t["state"]) for t in plan["tasks"]] == [("review", "open")]
    assert [a["kind"] for a in plan["audit"]][-1] == "stopped"
    cashed_plan = await wait_for_plan(acme, cashed.invoice_id, lambda p: p["status"].startswith("stopped"))
    assert set(states(cashed_plan).values()) == {("skipped", "stopped: cashed (212 ENCAISSEE)")}
    assert cashed_plan["tasks"] == []
    tasks = (await acme.get("/v1/tasks", params={"state": "open"})).json()
    assert [(t["invoice_id"], t["kind"]) for t in tasks] == [(str(refused.invoice_id), "review")]

    clock.set(datetime(2027, 3, 1, 9, tzinfo=UTC))
    assert (await host.ctx.extras["scheduler"].run_once()).emitted == []
    assert await published_reminders(host) == []


async def test_partial_payment_recomputes_the_open_amount_and_full_payment_stops(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock, acme, [invoice] = await start(run_service, publish, build, client_for, wait_for_plan, "PARTIAL")
    await publish(build.payment(invoice, "500.00", "700.00", datetime(2026, 12, 2, 10, tzinfo=UTC)))
    plan = await wait_for_plan(acme, invoice.invoice_id, lambda p: Decimal(p["open_amount"]) == Decimal("700.00"))
    assert plan["status"] == "active"

    clock.set(datetime(2027, 1, 4, 9, tzinfo=UTC))
    decided = await host.ctx.extras["scheduler"].run_once()
    assert [d.step for d in decided.emitted] == ["curative_1"]
    [reminder] = [r for r in await published_reminders(host) if r.reminder.step == "curative_1"]
    assert "700.00 EUR unpaid" in reminder.reason
    assert "interest 0.93 EUR (12.15 % a year on 700.00 EUR for 4 days)" in reminder.reason  # 700 × 12.15 % × 4/365

    await publish(build.payment(invoice, "700.00", "0", datetime(2027, 1, 5, 10, tzinfo=UTC)))
    plan = await wait_for_plan(acme, invoice.invoice_id, lambda p: p["status"].startswith("stopped"))
    assert states(plan)["curative_2"] == states(plan)["formal_notice"] == ("skipped", "stopped: paid in full")
    assert states(plan)["curative_1"][0] == "emitted"


async def test_a_promise_pauses_until_its_date_plus_grace(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock, acme, [invoice] = await start(run_service, publish, build, client_for, wait_for_plan, "PROMISED")
    scheduler = host.ctx.extras["scheduler"]
    clock.set(datetime(2026, 12, 3, 9, tzinfo=UTC))
    await scheduler.run_once()
    await publish(build.promise(invoice, date(2027, 1, 8), datetime(2026, 12, 22, 10, tzinfo=UTC)))
    resume_at = build.paris_8(date(2027, 1, 11))  # Friday 8 + 3 days = Monday 11, at the window's opening
    plan = await wait_for_plan(acme, invoice.invoice_id, lambda p: any(
        s["step"] == "preventive" and datetime.fromisoformat(s["fire_at"]) == resume_at for s in p["steps"]))
    assert any(a["kind"] == "rescheduled" for a in plan["audit"])
    clock.set(datetime(2027, 1, 8, 12, tzinfo=UTC))
    assert (await scheduler.run_once()).emitted == []
    clock.set(resume_at)
    assert [d.step for d in (await scheduler.run_once()).emitted] == ["curative_2"]


async def test_a_bounce_or_failure_defers_until_a_fallback_delivered(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock, acme, [bounced, failed] = await start(run_service, publish, build, client_for, wait_for_plan,
                                                       "BOUNCED", "FAILED")
    scheduler = host.ctx.extras["scheduler"]
    soft = build.delivery_bounced(failed, datetime(2026, 12, 1, 11, tzinfo=UTC), permanent=False)
    await publish(build.delivery_bounced(bounced, datetime(2026, 12, 1, 11, tzinfo=UTC)), soft,
                  build.dispatch_failed(failed, datetime(2026, 12, 1, 12, tzinfo=UTC)))
    for invoice in (bounced, failed):
        plan = await wait_for_plan(acme, invoice.invoice_id, lambda p: p["status"] == "paused")
        assert states(plan)["pre_due"][1].startswith("deferred until a fallback delivers: email_link")
    clock.set(datetime(2026, 12, 3, 9, tzinfo=UTC))
    assert (await scheduler.run_once()).emitted == []

    fallback_at = datetime(2026, 12, 4, 10, tzinfo=UTC)
    await publish(build.invoice_dispatched(bounced, at=fallback_at))
    plan = await wait_for_plan(acme, bounced.invoice_id, lambda p: p["status"] == "active")
    assert datetime.fromisoformat(plan["steps"][0]["fire_at"]) == fallback_at
    clock.set(datetime(2026, 12, 4, 11, tzinfo=UTC))
    assert [(d.invoice_id, d.step) for d in (await scheduler.run_once()).emitted] == [(bounced.invoice_id, "pre_due")]
    assert (await wait_for_plan(acme, failed.invoice_id))["status"] == "paused", "still no fallback for this one"

"""Events handled a polled batch at a time (one insert for the batch's facts, its invoices locked
and re-planned together) leave each invoice where handling them one by one would: several
invoices and several events of one invoice in a batch, and a fact that comes before its invoice. A
redelivered invoice or fact changes nothing: an invoice's first reception and a fact's own event id are
unique, which drops it (the consumer claims no inbox rows for them)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import func, select

from parcours_contracts import LifecycleStatus
from parcours_dunning.store.invoices import InvoiceSignal
from parcours_dunning.store.journal import AuditEntry, Task
from parcours_dunning.store.schedule import ScheduledStep
from parcours_runtime.clock import SettableClock
from parcours_runtime.inbox import inbox_table

UTC = timezone.utc
ISSUE, DUE = date(2026, 12, 1), date(2026, 12, 31)
DISPATCHED_AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
DISPUTED_AT, APPROVED_AT = datetime(2026, 12, 20, 10, tzinfo=UTC), datetime(2027, 1, 12, 15, tzinfo=UTC)


def states(plan) -> dict[str, tuple[str, str | None]]:
    return {s["step"]: (s["state"], s["reason"]) for s in plan["steps"]}


async def test_a_batch_of_events_leaves_each_invoice_where_one_at_a_time_would(
        run_service, publish, build, client_for, wait_for_plan):
    host = await run_service("dunning", time_travel=True, tick_seconds=3600)
    host.ctx.extras["clock"] = SettableClock(DISPATCHED_AT)
    acme = await client_for(host, "acme")
    invoices = [build.invoice_received(issue=ISSUE, due=DUE, number=f"INV-{n}", amount="1200.00") for n in range(6)]
    resolved, disputed, refused, paid, bounced, early = invoices
    await publish(*invoices[:5], *(build.invoice_dispatched(i, at=DISPATCHED_AT) for i in invoices[:5]))
    for invoice in invoices[:5]:
        await wait_for_plan(acme, invoice.invoice_id, lambda p: p["dispatched_at"] is not None)

    at = datetime(2026, 12, 2, 10, tzinfo=UTC)
    refusal, payment = build.lifecycle(refused, LifecycleStatus.REFUSEE, at), build.payment(paid, "1200.00", "0", at)
    await publish(build.lifecycle(resolved, LifecycleStatus.EN_LITIGE, DISPUTED_AT),
                  build.lifecycle(disputed, LifecycleStatus.EN_LITIGE, DISPUTED_AT),
                  refusal, refusal,  # the same event twice in a batch
                  build.lifecycle(resolved, LifecycleStatus.APPROUVEE, APPROVED_AT),
                  payment,
                  build.payment(early, "1200.00", "0", at),  # before dunning knows the invoice
                  build.delivery_bounced(bounced, at))

    plan = await wait_for_plan(acme, resolved.invoice_id, lambda p: any(
        s["step"] == "preventive" and datetime.fromisoformat(s["fire_at"]) == APPROVED_AT for s in p["steps"]))
    fire_at = {s["step"]: datetime.fromisoformat(s["fire_at"]) for s in plan["steps"]}
    assert plan["status"] == "active"
    assert fire_at["preventive"] == fire_at["curative_1"] == fire_at["curative_2"] == APPROVED_AT, \
        "steps held by the dispute fire when it was resolved"
    assert fire_at["formal_notice"] == build.paris_8(date(2027, 1, 20)), "a step past the resolution keeps its date"

    plan = await wait_for_plan(acme, disputed.invoice_id, lambda p: p["status"] == "paused")
    assert {state for step, state in states(plan).items() if step != "pre_due"} == {
        ("paused", "paused: disputed (207 EN_LITIGE)")}

    plan = await wait_for_plan(acme, refused.invoice_id, lambda p: p["status"].startswith("stopped"))
    assert set(states(plan).values()) == {("skipped", "stopped: refused (210 REFUSEE)")}
    assert [(t["kind"], t["state"]) for t in plan["tasks"]] == [("review", "open")]

    plan = await wait_for_plan(acme, paid.invoice_id, lambda p: p["status"].startswith("stopped"))
    assert set(states(plan).values()) == {("skipped", "stopped: paid in full")}

    plan = await wait_for_plan(acme, bounced.invoice_id, lambda p: p["status"] == "paused")
    assert states(plan)["pre_due"][1].startswith("deferred until a fallback delivers: email_link")

    await publish(early)
    plan = await wait_for_plan(acme, early.invoice_id, lambda p: p["steps"])
    assert plan["status"] == "stopped: paid in full", "the payment stored before the invoice counts"
    assert [t["invoice_id"] for t in (await acme.get("/v1/tasks")).json()] == [str(refused.invoice_id)]

    async def recorded():
        async with host.ctx.sessions() as db:
            facts = await db.scalar(select(func.count()).select_from(InvoiceSignal).where(
                InvoiceSignal.event_id.in_([refusal.event_id, payment.event_id])))
            claimed = {row.event_id for row in await db.execute(select(inbox_table.c.event_id))}
            audit = await db.scalar(select(func.count()).select_from(AuditEntry))
            tasks = await db.scalar(select(func.count()).select_from(Task))
            steps = await db.scalar(select(func.count()).select_from(ScheduledStep))
            return facts, claimed, audit, tasks, steps

    facts, claimed, audit, tasks, steps = await recorded()
    assert facts == 2 and tasks == 1 and steps > 0
    assert not ({i.event_id for i in invoices} | {refusal.event_id, payment.event_id}) & claimed
    consumer = host.consumer_of(type(payment))
    seen = sum(consumer.handled_by.values())
    await publish(refusal, payment, resolved)  # redelivered later

    async def redelivered():
        return sum(consumer.handled_by.values()) >= seen + 3
    await build.eventually(redelivered, what="the redeliveries consumed")
    assert await recorded() == (facts, claimed, audit, tasks, steps)

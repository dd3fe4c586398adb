"""Dunning in process on the real broker and database, on a settable clock: plans stored
from InvoiceReceived, receipt evidence in any order, reminders emitted exactly once."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

from parcours_runtime.clock import SettableClock

UTC = timezone.utc
TODAY = datetime.now(UTC).date()


async def start_dunning(run_service, **overrides):
    host = await run_service("dunning", **{"time_travel": True, "tick_seconds": 3600, **overrides})
    clock = SettableClock(datetime.now(UTC))
    host.ctx.extras["clock"] = clock
    return host, clock


ISSUE, DUE = date(2026, 12, 1), date(2026, 12, 31)           # a Tuesday; due on New Year's Eve
DISPATCHED_AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


async def test_plan_is_stored_and_the_pre_due_reminder_goes_out_once(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock = await start_dunning(run_service)
    received = build.invoice_received(issue=ISSUE, due=DUE, number="INV-30")
    await publish(received)
    acme = await client_for(host, "acme")

    plan = await wait_for_plan(acme, received.invoice_id)
    assert plan["number"] == "INV-30" and (plan["strategy"], plan["strategy_version"]) == ("default", 1)
    assert plan["steps"][-1]["step"] == "pre_due" and plan["steps"][-1]["fire_at"] is None, "waits for the dispatch"
    assert plan["steps"][-1]["reason"] == "waiting for the invoice's dispatch"

    await publish(build.invoice_dispatched(received, at=DISPATCHED_AT))
    plan = await wait_for_plan(acme, received.invoice_id, lambda p: p["dispatched_at"] is not None)
    pre_due_at = build.paris_8(date(2026, 12, 3))
    assert [(s["step"], s["sequence"], s["action"], datetime.fromisoformat(s["fire_at"]), s["state"])
            for s in plan["steps"]] == [
        ("pre_due", 1, "reminder", pre_due_at, "pending"),
        ("preventive", 2, "reminder", build.paris_8(date(2026, 12, 28)), "pending"),
        ("curative_1", 3, "reminder", build.paris_8(date(2027, 1, 4)), "pending"),
        ("curative_2", 4, "reminder", build.paris_8(date(2027, 1, 11)), "pending"),
        ("formal_notice", 5, "task", build.paris_8(date(2027, 1, 20)), "pending"),
    ]
    assert plan["receipt"] is None and plan["status"] == "active"

    scheduler = host.ctx.extras["scheduler"]
    clock.set(pre_due_at - timedelta(minutes=1))
    early = await scheduler.run_once()
    assert early.emitted == [] and early.skipped == []

    clock.set(pre_due_at + timedelta(hours=2))
    first = await scheduler.run_once()
    assert [(d.invoice_id, d.step, d.state) for d in first.emitted] == [(received.invoice_id, "pre_due", "emitted")]
    assert (await scheduler.run_once()).emitted == [], "a second pass emits nothing more"

    [reminder] = await published_reminders(host)
    assert reminder.type == "reminder.due"
    assert (reminder.tenant_id, reminder.invoice_id, reminder.correlation_id) == (
        "acme", received.invoice_id, received.correlation_id)
    assert (reminder.reminder.strategy, reminder.reminder.step, reminder.reminder.sequence) == ("default", "pre_due", 1)
    assert reminder.invoice == received.invoice
    assert "no delivery.acked or link.clicked" in reminder.reason
    assert reminder.occurred_at == pre_due_at + timedelta(hours=2), "stamped with the service's clock"

    plan = await wait_for_plan(acme, received.invoice_id)
    states = {s["step"]: (s["state"], s["reason"]) for s in plan["steps"]}
    assert states["pre_due"] == ("emitted", reminder.reason)
    assert states["preventive"] == ("pending", None)
    assert plan["steps"][0]["event_id"] == str(reminder.event_id)
    assert [(a["kind"], a["step"]) for a in plan["audit"]] == [("planned", None), ("scheduled", None), ("sent", "pre_due")]


async def test_reminders_route_is_tenant_scoped(run_service, publish, build, client_for, wait_for_plan):
    host, _ = await start_dunning(run_service)
    received = build.invoice_received(issue=TODAY, due=TODAY + timedelta(days=30))
    await publish(received)
    acme = await client_for(host, "acme")
    await wait_for_plan(acme, received.invoice_id)

    globex = await client_for(host, "globex")
    other = await globex.get(f"/v1/invoices/{received.invoice_id}/reminders")
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    anonymous = await client_for(host, None)
    assert (await anonymous.get(f"/v1/invoices/{received.invoice_id}/reminders")).status_code == 401
    wrong_key = await client_for(host, None, headers={"Authorization": "Bearer prc_nope_nope"})
    assert (await wrong_key.get(f"/v1/invoices/{received.invoice_id}/reminders")).status_code == 401
    malformed = await acme.get("/v1/invoices/not-a-uuid/reminders")
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["in"] == "path"


async def test_receipt_evidence_skips_the_receipt_check_but_not_the_next_reminder(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock = await start_dunning(run_service)
    acme = await client_for(host, "acme")
    clicked_first = build.invoice_received(issue=ISSUE, due=DUE, number="CLICKED-FIRST")
    acked_later = build.invoice_received(issue=ISSUE, due=DUE, number="ACKED-LATER")
    silent = build.invoice_received(issue=ISSUE, due=DUE, number="SILENT")

    # The click arrives before the invoice itself: topics are not ordered among themselves.
    await publish(build.link_clicked(tenant_id="acme", invoice_id=clicked_first.invoice_id),
                  # another tenant's evidence about an invoice id of acme's must not count for acme
                  build.link_clicked(tenant_id="globex", invoice_id=silent.invoice_id))
    await build.eventually(lambda: evidence_count(host, 2))
    await publish(clicked_first, acked_later, silent)
    await publish(*(build.invoice_dispatched(i, at=DISPATCHED_AT) for i in (clicked_first, acked_later, silent)))
    await wait_for_plan(acme, silent.invoice_id, lambda p: p["dispatched_at"] is not None)
    acked_at = datetime.now(UTC).replace(microsecond=0)
    await publish(build.delivery_acked(tenant_id="acme", invoice_id=acked_later.invoice_id, acked_at=acked_at))
    acked_plan = await wait_for_plan(acme, acked_later.invoice_id, lambda p: p["receipt"] is not None)
    assert acked_plan["receipt"]["kind"] == "delivery.acked"
    assert (await wait_for_plan(acme, clicked_first.invoice_id,
                                lambda p: p["dispatched_at"] is not None))["receipt"]["kind"] == "link.clicked"
    assert (await wait_for_plan(acme, silent.invoice_id))["receipt"] is None

    scheduler = host.ctx.extras["scheduler"]
    clock.set(datetime(2026, 12, 3, 9, tzinfo=UTC))
    receipt_check = await scheduler.run_once()
    assert [(d.invoice_id, d.step) for d in receipt_check.emitted] == [(silent.invoice_id, "pre_due")]
    skipped = {d.invoice_id: d.reason for d in receipt_check.skipped}
    assert skipped.keys() == {clicked_first.invoice_id, acked_later.invoice_id}
    assert skipped[clicked_first.invoice_id].startswith("receipt established by link.clicked at ")
    assert skipped[acked_later.invoice_id] == f"receipt established by delivery.acked at {acked_at.isoformat()}"

    clock.set(datetime(2026, 12, 28, 9, tzinfo=UTC))
    preventive = await scheduler.run_once()
    assert sorted((d.invoice_id, d.step) for d in preventive.emitted) == sorted(
        (i.invoice_id, "preventive") for i in (clicked_first, acked_later, silent))
    assert preventive.skipped == []

    sent = {(r.invoice_id, r.reminder.step) for r in await published_reminders(host)}
    assert sent == {(silent.invoice_id, "pre_due"), (silent.invoice_id, "preventive"),
                    (clicked_first.invoice_id, "preventive"), (acked_later.invoice_id, "preventive")}
    plan = await wait_for_plan(acme, clicked_first.invoice_id)
    assert [(s["step"], s["state"]) for s in plan["steps"][:3]] == [("pre_due", "skipped"), ("preventive", "emitted"),
                                                                    ("curative_1", "pending")]
    assert plan["steps"][0]["reason"] == skipped[clicked_first.invoice_id]
    assert ("skipped", "pre_due", skipped[clicked_first.invoice_id]) in [(a["kind"], a["step"], a["detail"]) for a in plan["audit"]]


async def evidence_count(host, expected: int) -> bool:
    from sqlalchemy import func, select

    from parcours_dunning.store.invoices import Evidence

    async with host.ctx.sessions() as session:
        return (await session.execute(select(func.count()).select_from(Evidence))).scalar_one() == expected


async def test_concurrent_passes_emit_each_step_exactly_once(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host, clock = await start_dunning(run_service, scheduler_batch_size=5)
    acme = await client_for(host, "acme")
    invoices = [build.invoice_received(issue=ISSUE, due=DUE, number=f"INV-{i}") for i in range(12)]
    await publish(*invoices)
    await publish(*(build.invoice_dispatched(i, at=DISPATCHED_AT) for i in invoices))
    for invoice in invoices:
        await wait_for_plan(acme, invoice.invoice_id, lambda p: p["dispatched_at"] is not None)
    scheduler = host.ctx.extras["scheduler"]

    clock.set(datetime(2026, 12, 3, 10, tzinfo=UTC))
    passes = await asyncio.gather(*(scheduler.run_once() for _ in range(3)))
    emitted = [(d.invoice_id, d.step) for p in passes for d in p.emitted]
    assert sorted(emitted) == sorted((i.invoice_id, "pre_due") for i in invoices)
    assert (await scheduler.run_once()).emitted == []

    # Past the first curative date at once (scheduler down for a week): only the latest reminder goes out.
    clock.set(datetime(2027, 1, 5, 10, tzinfo=UTC))
    passes = await asyncio.gather(*(scheduler.run_once() for _ in range(3)))
    emitted = [(d.invoice_id, d.step) for p in passes for d in p.emitted]
    skipped = [(d.invoice_id, d.step, d.reason) for p in passes for d in p.skipped]
    assert sorted(emitted) == sorted((i.invoice_id, "curative_1") for i in invoices)
    assert sorted(skipped) == sorted((i.invoice_id, "preventive", "superseded by curative_1: both fell due at once")
                                     for i in invoices)

    published = [(r.invoice_id, r.reminder.step) for r in await published_reminders(host)]
    assert len(published) == 24
    assert sorted(published) == sorted([(i.invoice_id, "pre_due") for i in invoices]
                                       + [(i.invoice_id, "curative_1") for i in invoices])
    [one] = [r for r in await published_reminders(host) if r.invoice_id == invoices[0].invoice_id and r.reminder.step == "curative_1"]
    assert "late-payment penalties: indemnity 40.00 EUR, interest 0.20 EUR (12.15 % a year on 120.00 EUR for 5 days)" in one.reason


async def test_without_time_travel_the_loop_runs_on_real_time_and_admin_routes_do_not_exist(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    host = await run_service("dunning", tick_seconds=0.2)
    from parcours_runtime.clock import SystemClock
    assert isinstance(host.ctx.extras["clock"], SystemClock)
    admin = await client_for(host, None, headers={"Authorization": "Bearer dev-admin-token"})
    assert (await admin.put("/v1/admin/clock", json={"now": "2030-01-01T00:00:00Z"})).status_code == 404
    assert (await admin.post("/v1/admin/scheduler/run")).status_code == 404
    assert (await admin.get("/v1/admin/clock")).status_code == 404
    assert not any(path.startswith("/v1/admin") for path in (await admin.get("/openapi.json")).json()["paths"])

    # An invoice that reaches dunning a month overdue: one curative reminder and the formal-notice task,
    # not a burst; the receipt check still waits for a dispatch.
    late = build.invoice_received(issue=TODAY - timedelta(days=60), due=TODAY - timedelta(days=30))
    await publish(late)
    acme = await client_for(host, "acme")
    plan = await wait_for_plan(acme, late.invoice_id, lambda p: all(s["state"] != "pending" for s in p["steps"]))
    assert {s["step"]: s["state"] for s in plan["steps"]} == {
        "pre_due": "paused", "preventive": "skipped", "curative_1": "skipped", "curative_2": "emitted",
        "formal_notice": "done"}
    assert [(t["kind"], t["source"], t["state"]) for t in plan["tasks"]] == [("formal_notice", "step:formal_notice", "open")]
    await asyncio.sleep(0.6)  # a few more ticks
    assert [(r.invoice_id, r.reminder.step) for r in await published_reminders(host)] == [(late.invoice_id, "curative_2")]

    # dispatched at last: the receipt check is too late to make sense after a curative reminder
    await publish(build.invoice_dispatched(late, at=datetime.now(UTC) - timedelta(days=10)))
    plan = await wait_for_plan(acme, late.invoice_id,
                               lambda p: any(s["step"] == "pre_due" and s["state"] == "skipped" for s in p["steps"]))
    assert [s["reason"] for s in plan["steps"] if s["step"] == "pre_due"] == ["superseded by curative_2, already sent"]


async def test_stop_lets_the_batch_in_hand_commit_then_the_loop_ends(
        run_service, publish, build, client_for, wait_for_plan, published_reminders):
    from sqlalchemy import select, text

    from parcours_dunning.store.schedule import ScheduledStep

    host, clock = await start_dunning(run_service, tick_seconds=0.05)
    clock.set(DISPATCHED_AT)
    received = build.invoice_received(issue=ISSUE, due=DUE)
    await publish(received, build.invoice_dispatched(received, at=DISPATCHED_AT))
    acme = await client_for(host, "acme")
    await wait_for_plan(acme, received.invoice_id, lambda p: p["dispatched_at"] is not None)
    scheduler = host.ctx.extras["scheduler"]

    async with host.ctx.sessions() as blocker, blocker.begin():
        # Hold the schedule rows so the loop's next pass blocks in the middle of its batch.
        await blocker.execute(select(ScheduledStep).with_for_update())
        clock.set(datetime(2026, 12, 3, 9, tzinfo=UTC))

        async def pass_blocked():
            return (await blocker.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ))).scalar_one() > 0
        await build.eventually(pass_blocked)
        stopping = asyncio.create_task(scheduler.stop())
        await asyncio.sleep(0.3)
        assert not stopping.done(), "stop waits for the batch in hand"
    await asyncio.wait_for(stopping, 10)

    plan = await wait_for_plan(acme, received.invoice_id)
    assert [s["state"] for s in plan["steps"]] == ["emitted", "pending", "pending", "pending", "pending"]
    clock.set(datetime(2027, 2, 1, 9, tzinfo=UTC))
    await asyncio.sleep(0.3)  # several ticks' worth: the stopped loop runs no more passes
    assert [s["state"] for s in (await wait_for_plan(acme, received.invoice_id))["steps"]] == [
        "emitted", "pending", "pending", "pending", "pending"]
    assert [(r.invoice_id, r.reminder.step) for r in await published_reminders(host)] == [(received.invoice_id, "pre_due")]

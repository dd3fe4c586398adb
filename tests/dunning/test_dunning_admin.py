"""The time-travel admin routes over HTTP: the admin token, moving the clock, running a pass."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

UTC = timezone.utc
TODAY = datetime.now(UTC).date()
ADMIN = {"Authorization": "Bearer dev-admin-token"}


async def test_admin_clock_and_scheduler_routes(run_service, publish, build, client_for, wait_for_plan,
                                                published_reminders):
    host = await run_service("dunning", time_travel=True, tick_seconds=3600)
    clock = host.ctx.extras["clock"]
    started = clock.now()
    assert abs(started - datetime.now(UTC)) < timedelta(minutes=1), "time travel starts at the real now"

    anonymous = await client_for(host, None)
    wrong = await client_for(host, None, headers={"Authorization": "Bearer not-the-token"})
    admin = await client_for(host, None, headers=ADMIN)
    target = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
    for client in (anonymous, wrong):
        refused = await client.put("/v1/admin/clock", json={"now": target.isoformat()})
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        assert (await client.post("/v1/admin/scheduler/run")).status_code == 401
        assert (await client.get("/v1/admin/clock")).status_code == 401
    assert clock.now() == started, "refused requests change nothing"
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    assert {"/v1/admin/clock", "/v1/admin/scheduler/run"} <= paths.keys()

    for bad in ({"now": "2031-03-04T05:06:07"}, {"now": "yesterday"}, {}, {"now": target.isoformat(), "extra": 1}):
        invalid = await admin.put("/v1/admin/clock", json=bad)
        assert invalid.status_code == 422, bad
    assert clock.now() == started

    moved = await admin.put("/v1/admin/clock", json={"now": "2031-03-04T06:06:07+01:00"})
    assert moved.status_code == 200
    assert datetime.fromisoformat(moved.json()["now"]) == target
    assert host.ctx.extras["clock"].now() == target
    assert datetime.fromisoformat((await admin.get("/v1/admin/clock")).json()["now"]) == target

    # An invoice dispatched on Friday 4 December 2026: its receipt check is two business days later.
    received = build.invoice_received(issue=date(2026, 12, 4), due=date(2027, 1, 3), number="SHORT-3")
    await publish(received, build.invoice_dispatched(received, at=datetime(2026, 12, 4, 10, tzinfo=UTC)))
    acme = await client_for(host, "acme")
    plan = await wait_for_plan(acme, received.invoice_id, lambda p: p["dispatched_at"] is not None)
    pre_due_at = build.paris_8(date(2026, 12, 8))
    assert datetime.fromisoformat(plan["steps"][0]["fire_at"]) == pre_due_at

    assert (await admin.put("/v1/admin/clock", json={"now": (pre_due_at + timedelta(hours=1)).isoformat()})
            ).status_code == 200
    assert (await wrong.post("/v1/admin/scheduler/run")).status_code == 401
    assert {s["state"] for s in (await wait_for_plan(acme, received.invoice_id))["steps"]} == {"pending"}

    ran = await admin.post("/v1/admin/scheduler/run")
    assert ran.status_code == 200
    body = ran.json()
    assert datetime.fromisoformat(body["now"]) == pre_due_at + timedelta(hours=1)
    assert [(d["invoice_id"], d["step"], d["sequence"], d["state"]) for d in body["emitted"]] == [
        (str(received.invoice_id), "pre_due", 1, "emitted")]
    assert body["skipped"] == []
    assert (await admin.post("/v1/admin/scheduler/run")).json()["emitted"] == []

    [reminder] = await published_reminders(host)
    assert (reminder.invoice_id, reminder.reminder.step, str(reminder.event_id)) == (
        received.invoice_id, "pre_due", body["emitted"][0]["event_id"])



async def test_runs_as_a_process_configured_from_the_environment(spawn_service):
    import asyncio

    import httpx

    process = spawn_service("dunning", extra={"TIME_TRAVEL": "true", "TICK_SECONDS": "3600"})
    await asyncio.to_thread(process.wait_ready, 60)
    async with httpx.AsyncClient(base_url=process.url, headers=ADMIN, timeout=10) as admin:
        moved = await admin.put("/v1/admin/clock", json={"now": "2031-01-01T08:00:00Z"})
        assert moved.status_code == 200 and datetime.fromisoformat(moved.json()["now"]).year == 2031
        assert (await admin.post("/v1/admin/scheduler/run")).json()["emitted"] == []
    assert await asyncio.to_thread(process.terminate) == 0, "SIGTERM stops it gracefully"

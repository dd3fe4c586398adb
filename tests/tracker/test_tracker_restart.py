"""Receipt timers live in the database: a tracker killed (-9) while an invoice awaits its proof
loses nothing, and the restarted process's own periodic sweep opens the incident when it is due."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from parcours_contracts import IncidentOpened, TenantApiKeyIssued, topics
from parcours_runtime.tenancy import generate_api_key, hash_api_key
from parcours_tracker.store.models import ReceiptTimer

ADMIN = {"Authorization": "Bearer dev-admin-token"}
SETTINGS = {"TIME_TRAVEL": "true", "SWEEP_TICK_SECONDS": "0.3"}


async def _timer(database_url: str, invoice_id):
    """The invoice's receipt timer row, read straight from the tracker's database."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(ReceiptTimer).where(ReceiptTimer.invoice_id == invoice_id))).first()
    finally:
        await engine.dispose()


async def test_receipt_timers_survive_a_crash_and_fire_after_the_restart(spawn_service, make_database, publish, flow,
                                                                        eventually, read_topic):
    database_url = make_database("tracker")
    first = await asyncio.to_thread(lambda: spawn_service("tracker", database_url=database_url,
                                                          extra=SETTINGS).wait_ready())
    key_id, key = generate_api_key()
    await publish(TenantApiKeyIssued(tenant_id="acme", correlation_id="tenant-acme", key_id=key_id,
                                     key_hash=hash_api_key(key), tenant_name="ACME SAS"))
    dispatched_at = datetime.now(timezone.utc)
    f = flow(number="F-RESTART")
    await publish(f.received(0), f.dispatched(0).model_copy(update={"channel": "edi", "occurred_at": dispatched_at}))
    tenant = {"Authorization": f"Bearer {key}"}

    async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
        async def sent():
            response = await http.get(f"/v1/invoices/{f.invoice_id}/journey", headers=tenant)
            return response.status_code == 200 and response.json()["status"] == "sent"
        await eventually(sent, what="the EDI invoice sent")
    timer = await _timer(database_url, f.invoice_id)
    assert (timer.expect_by, timer.fired_at) == (dispatched_at + timedelta(hours=1), None), "the ack is awaited"

    first.kill()
    second = await asyncio.to_thread(lambda: spawn_service("tracker", database_url=database_url,
                                                           extra=SETTINGS).wait_ready())
    async with httpx.AsyncClient(base_url=second.url, timeout=10) as http:
        assert (await http.get("/v1/incidents", headers=tenant)).json()["items"] == [], "nothing was due yet"
        moved = await http.put("/v1/admin/clock", json={"now": (dispatched_at + timedelta(hours=2)).isoformat()},
                               headers=ADMIN)
        assert moved.status_code == 200, moved.text

        async def opened():  # by the restarted process's own periodic sweep: nobody calls /sweep/run
            return (await http.get("/v1/incidents", params={"status": "open"}, headers=tenant)).json()["items"]
        [incident] = await eventually(opened, what="the stored timer firing after the restart")
    assert (incident["invoice_id"], incident["kind"], incident["evidence"]["awaited"]) == \
        (str(f.invoice_id), "not_received", "ack")
    assert (await _timer(database_url, f.invoice_id)).fired_at is not None
    published = await read_topic(topics.INCIDENT_EVENTS, until=lambda events: len(events) >= 1)
    assert [(type(e), e.invoice_id) for e in published] == [(IncidentOpened, f.invoice_id)], "fired once"

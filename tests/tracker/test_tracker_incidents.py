"""Incidents on the real broker and DB: stored receipt timers fired by the sweep on a settable
clock, resolved by a late signal or by hand; bounces and unroutable invoices; the incidents API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from parcours_contracts import DeliveryBounced, IncidentOpened, IncidentResolved, topics
from parcours_tracker.store.models import ReceiptTimer

ADMIN = {"Authorization": "Bearer dev-admin-token"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def tracker(run_service):
    """A tracker on a settable clock, whose sweep only runs when told to."""
    return await run_service("tracker", time_travel=True, sweep_tick_seconds=3600)


async def status_of(client, key, f) -> str | None:
    response = await client.get(f"/v1/invoices/{f.invoice_id}/journey", headers=auth(key))
    return response.json()["status"] if response.status_code == 200 else None


async def incidents(client, key, **params) -> list[dict]:
    response = await client.get("/v1/incidents", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def travel(client, instant: datetime) -> None:
    response = await client.put("/v1/admin/clock", json={"now": instant.isoformat()}, headers=ADMIN)
    assert response.status_code == 200, response.text


async def sweep(client) -> list[dict]:
    response = await client.post("/v1/admin/sweep/run", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["opened"]


async def test_not_received_incidents_open_on_the_clock_and_resolve(tracker, client, tenant_key, publish, flow,
                                                                     eventually, read_topic):
    key = await tenant_key(tracker)
    now = datetime.now(timezone.utc)
    by_email, by_edi = flow(number="F-MAIL"), flow(number="F-EDI")
    edi_dispatch = by_edi.dispatched(0).model_copy(update={"channel": "edi", "occurred_at": now})
    await publish(by_email.received(0), by_email.dispatched(2), by_edi.received(0), edi_dispatch)

    async def both_sent():
        return await status_of(client, key, by_email) == await status_of(client, key, by_edi) == "sent"
    await eventually(both_sent, what="both invoices sent")

    assert await sweep(client) == [], "nothing is late yet"
    await travel(client, now + timedelta(hours=2))  # EDI owed an ack within 1 h; the mail has 2 business days
    [opened] = await sweep(client)
    assert (opened["invoice_id"], opened["channel"]) == (str(by_edi.invoice_id), "edi")
    assert await sweep(client) == [], "a timer fires once"
    [incident] = await incidents(client, key, status="open")
    assert (incident["kind"], incident["suggested_action"], incident["evidence"]["awaited"]) == \
        ("not_received", "resend", "ack")

    await travel(client, now + timedelta(days=7))
    [late_mail] = await sweep(client)
    assert late_mail["invoice_id"] == str(by_email.invoice_id)
    mail_incident = (await incidents(client, key, status="open", kind="not_received"))[0]
    assert (mail_incident["suggested_action"], mail_incident["evidence"]["awaited"]) == ("call", "view")

    # The ack comes late: the incident resolves by itself. The mail's one is resolved by hand.
    await publish(by_edi.acked(200))

    async def edi_resolved():
        return [i for i in await incidents(client, key, status="resolved") if i["invoice_id"] == str(by_edi.invoice_id)]
    [resolved] = await eventually(edi_resolved, what="the late ack resolves the incident")
    assert "arrived late" in resolved["resolution"]

    assigned = await client.post(f"/v1/incidents/{mail_incident['incident_id']}/assign", json={"assignee": "claire"},
                                 headers=auth(key))
    assert assigned.json()["assignee"] == "claire"
    done = await client.post(f"/v1/incidents/{mail_incident['incident_id']}/resolve",
                             json={"resolution": "called the customer: mail address changed"}, headers=auth(key))
    assert (done.status_code, done.json()["status"]) == (200, "resolved")
    again = await client.post(f"/v1/incidents/{mail_incident['incident_id']}/resolve", json={"resolution": "x"},
                              headers=auth(key))
    assert again.status_code == 409
    await publish(by_email.reminder_due(300))  # an unrelated fact does not reopen what was settled by hand
    await eventually(lambda: _has_kind(client, key, by_email, "reminder_due"))
    assert await sweep(client) == [] and await incidents(client, key, status="open") == []

    published = await read_topic(topics.INCIDENT_EVENTS, until=lambda events: len(events) >= 4)
    edi_events = [e for e in published if e.invoice_id == by_edi.invoice_id]  # in order per invoice (its key)
    assert [type(e) for e in edi_events] == [IncidentOpened, IncidentResolved]
    assert (edi_events[0].incident_id, edi_events[0].kind, edi_events[0].correlation_id) == \
        (uuid.UUID(incident["incident_id"]), "not_received", by_edi.correlation_id)
    assert edi_events[1].incident_id == edi_events[0].incident_id
    assert len([e for e in published if e.invoice_id == by_email.invoice_id]) == 2
    journey = (await client.get(f"/v1/invoices/{by_edi.invoice_id}/journey", headers=auth(key))).json()
    assert [e["kind"] for e in journey["events"]][-3:] == ["acked", "incident_opened", "incident_resolved"]


async def test_a_sweep_on_demand_fires_a_timer_that_a_transaction_holds(tracker, client, tenant_key, publish, flow,
                                                                        eventually):
    """A consumer's transaction touching an invoice locks its timer row for a moment (the upsert locks it even
    when it changes nothing). The sweep run on demand waits for it instead of skipping it: what is due at its
    instant fires in that run."""
    key = await tenant_key(tracker)
    now = datetime.now(timezone.utc)
    held = flow(number="F-HELD")
    await publish(held.received(0), held.dispatched(0).model_copy(update={"channel": "edi", "occurred_at": now}))
    await eventually(lambda: _has_kind(client, key, held, "received"), what="the invoice known")
    await eventually(lambda: _has_kind(client, key, held, "dispatched"), what="the invoice sent")
    await travel(client, now + timedelta(hours=2))
    async with tracker.ctx.engine.connect() as conn:
        await conn.execute(select(ReceiptTimer).where(ReceiptTimer.invoice_id == held.invoice_id).with_for_update())
        sweeping = asyncio.create_task(sweep(client))

        async def sweep_waits() -> bool:
            async with tracker.ctx.sessions() as session:
                return (await session.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"))).scalar_one() > 0
        await eventually(sweep_waits, what="the sweep waiting for the held timer", timeout=10)
        await conn.rollback()
    [opened] = await sweeping
    assert opened["invoice_id"] == str(held.invoice_id)


async def _has_kind(client, key, f, kind) -> bool:
    journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey", headers=auth(key))).json()
    return kind in [e["kind"] for e in journey.get("events", [])]


async def test_bounces_unroutable_and_failures_open_incidents(tracker, client, tenant_key, publish, flow, eventually):
    key = await tenant_key(tracker)
    other_key = await tenant_key(tracker, tenant_id="initech", tenant_name="Initech")
    bounced, unroutable, failing = flow(number="F-B"), flow(number="F-U"), flow(number="F-F")
    bounce = DeliveryBounced(tenant_id="acme", invoice_id=bounced.invoice_id, correlation_id=bounced.correlation_id,
                             occurred_at=bounced.start + timedelta(minutes=5), dispatch_id=bounced.dispatch_id,
                             channel="email_link", recipient="ap@globex.example", permanent=True, status="5.1.1",
                             diagnostic="550 5.1.1 user unknown")
    await publish(bounced.received(0), bounced.dispatched(2), bounce, unroutable.received(0), unroutable.unroutable(1),
                  failing.received(0), failing.dispatch_requested(1), failing.failed(2))

    async def three_open():
        items = await incidents(client, key, status="open")
        return items if len(items) == 3 else None
    items = await eventually(three_open, what="three incidents")
    by_kind = {item["kind"]: item for item in items}
    assert by_kind["bounced"]["suggested_action"] == "fix_address"
    assert by_kind["bounced"]["evidence"]["diagnostic"] == "550 5.1.1 user unknown"
    assert by_kind["unroutable"]["suggested_action"] == "complete_directory"
    assert by_kind["failed"]["channel"] == "email_link"
    assert await status_of(client, key, bounced) == "bounced"

    first = (await client.get("/v1/incidents", params={"limit": 2}, headers=auth(key))).json()
    rest = (await client.get("/v1/incidents", params={"limit": 2, "cursor": first["next_cursor"]},
                             headers=auth(key))).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert [i["kind"] for i in await incidents(client, key, kind="bounced")] == ["bounced"]
    assert await incidents(client, other_key) == []
    foreign = await client.post(f"/v1/incidents/{by_kind['failed']['incident_id']}/resolve",
                                json={"resolution": "x"}, headers=auth(other_key))
    assert foreign.status_code == 404
    bad = await client.get("/v1/incidents", params={"kind": "lost"}, headers=auth(key))
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/kind"
    assert (await client.post("/v1/admin/sweep/run")).status_code == 401
    assert (await client.post("/v1/admin/sweep/run", headers=auth(key))).status_code == 401

    # A later retry on another channel settles the failure by itself.
    fallback = uuid.uuid4()
    await publish(failing.dispatch_requested(3, fallback, channel="postal"))

    async def failure_settled():
        return [i for i in await incidents(client, key, status="resolved") if i["kind"] == "failed"]
    [settled] = await eventually(failure_settled, what="the retry settles the failure")
    assert "queued" in settled["resolution"]


@pytest.fixture
async def client(tracker):
    import httpx

    async with httpx.AsyncClient(base_url=tracker.url, timeout=10) as http:
        yield http

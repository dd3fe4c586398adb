"""The signed partner ack webhook: authentic acks become DeliveryAcked once; anything else
is refused and publishes nothing."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import select

from parcours_contracts import DeliveryAcked, topics
from parcours_tracker.domain.acks import sign_ack
from parcours_tracker.store.models import JournalEntry


def signed(body: dict | bytes, secret: str = "dev-ack-secret", at: float | None = None) -> dict:
    """Request arguments for a partner ack signed as the partner docs say."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = str(int(at if at is not None else time.time()))
    return {"content": raw, "headers": {"Content-Type": "application/json", "X-Parcours-Timestamp": timestamp,
                                        "X-Parcours-Signature": sign_ack(secret, timestamp, raw)}}


def ack_body(f, ack_id: str = "EDI-0001", **extra) -> dict:
    return {"tenant_id": f.tenant_id, "invoice_id": str(f.invoice_id), "ack_id": ack_id, **extra}


async def known_invoice(tracker, publish, flow, eventually, **kwargs):
    f = flow(**kwargs)
    await publish(f.received(0), f.dispatched(2))

    async def journaled():
        async with tracker.ctx.sessions() as session:
            rows = await session.execute(select(JournalEntry.id).where(JournalEntry.invoice_id == f.invoice_id))
            return len(rows.all()) == 2
    await eventually(journaled, what="invoice known to the tracker")
    return f


async def acks_in_journal(tracker, invoice_id) -> list[dict]:
    async with tracker.ctx.sessions() as session:
        return list((await session.execute(
            select(JournalEntry.detail).where(JournalEntry.invoice_id == invoice_id, JournalEntry.kind == "acked")
        )).scalars())


async def test_a_valid_ack_is_published_once_and_shows_in_the_journey(
        tracker, client, tenant_key, publish, flow, read_topic, eventually, consumed):
    key = await tenant_key(tracker, tenant_id="acme")
    f = await known_invoice(tracker, publish, flow, eventually)
    acked_at = (datetime.now(timezone.utc) - timedelta(minutes=10)).replace(microsecond=0)
    acked_at_utc = acked_at.isoformat().replace("+00:00", "Z")
    # The partner's clock is in Paris: the journey stores and shows UTC.
    body = ack_body(f, status="accepted", acked_at=acked_at.astimezone(timezone(timedelta(hours=1))).isoformat())

    response = await client.post("/v1/acks/edi", **signed(body))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["duplicate"] is False

    journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey", headers={"Authorization": f"Bearer {key}"})).json()
    assert journey["status"] == "delivered"
    assert journey["acked_at"] == acked_at_utc
    assert journey["events"][-1]["kind"] == "acked"
    assert journey["events"][-1]["detail"] == {"channel": "edi", "ack_id": "EDI-0001", "status": "accepted",
                                               "acked_at": acked_at_utc}

    # The partner retries: the same delivery is absorbed, a different body under the same id is refused.
    again = await client.post("/v1/acks/edi", **signed(body))
    assert again.status_code == 200
    assert again.json() == {"duplicate": True, "ack_id": "EDI-0001", "event_id": answer["event_id"]}
    conflicting = await client.post("/v1/acks/edi", **signed({**body, "status": "rejected"}))
    assert conflicting.status_code == 409
    assert conflicting.json()["type"].endswith("/ack-replayed")

    [event] = await read_topic(topics.DELIVERY_ACKED, until=lambda events: len(events) >= 1)
    assert isinstance(event, DeliveryAcked)
    assert str(event.event_id) == answer["event_id"]
    assert (event.tenant_id, event.invoice_id, event.channel, event.ack_id, event.status) == (
        "acme", f.invoice_id, "edi", "EDI-0001", "accepted")
    assert event.acked_at == event.occurred_at == acked_at
    assert event.correlation_id == f.correlation_id
    await eventually(lambda: consumed(event), what="the tracker consumed its own DeliveryAcked")
    assert len(await acks_in_journal(tracker, f.invoice_id)) == 1


async def test_refused_acks_publish_nothing(tracker, client, publish, flow, read_topic, eventually):
    f = await known_invoice(tracker, publish, flow, eventually)
    other_tenants = await known_invoice(tracker, publish, flow, eventually, tenant_id="initech")
    body = ack_body(f, ack_id="EDI-BAD")
    refused = {
        "bad signature": (await client.post("/v1/acks/edi", **signed(body, secret="not-the-secret"))),
        "stale timestamp": (await client.post("/v1/acks/edi", **signed(body, at=time.time() - 301))),
        "unsigned": (await client.post("/v1/acks/edi", json=body)),
        "unknown channel": (await client.post("/v1/acks/carrier_pigeon", **signed(body))),
        "other tenant's invoice": (await client.post(
            "/v1/acks/edi", **signed({**ack_body(other_tenants, ack_id="EDI-X"), "tenant_id": "acme"}))),
        "unknown invoice": (await client.post("/v1/acks/edi", **signed({**body, "invoice_id": str(uuid.uuid4())}))),
        "bad body": (await client.post("/v1/acks/edi", **signed({**body, "invoice_id": "nope", "colour": "red"}))),
        "not json": (await client.post("/v1/acks/edi", **signed(b"{not json"))),
        "future ack": (await client.post("/v1/acks/edi", **signed({**body, "acked_at": "2099-01-01T00:00:00Z"}))),
        "too big": (await client.post("/v1/acks/edi", **signed({**body, "status": "x" * 70_000}))),
    }
    statuses = {reason: response.status_code for reason, response in refused.items()}
    assert statuses == {"bad signature": 401, "stale timestamp": 401, "unsigned": 401, "unknown channel": 404,
                        "other tenant's invoice": 404, "unknown invoice": 404, "bad body": 422, "not json": 422,
                        "future ack": 422, "too big": 413}
    for reason, response in refused.items():
        assert response.headers["content-type"] == "application/problem+json", reason
    pointers = {error["pointer"] for error in refused["bad body"].json()["errors"]}
    assert pointers == {"/invoice_id", "/colour"}

    # A valid ack afterwards is the only event ever published.
    assert (await client.post("/v1/acks/edi", **signed(ack_body(f, ack_id="EDI-GOOD")))).status_code == 202
    published = await read_topic(topics.DELIVERY_ACKED, until=lambda events: len(events) >= 1)
    assert [event.ack_id for event in published] == ["EDI-GOOD"]
    assert [detail["ack_id"] for detail in await acks_in_journal(tracker, f.invoice_id)] == ["EDI-GOOD"]
    assert await acks_in_journal(tracker, other_tenants.invoice_id) == []


@pytest.fixture
async def rotating_tracker(run_service):
    """A tracker whose EDI partner is rotating its webhook secret."""
    return await run_service("tracker", ack_secrets={"edi": ["edi-new-secret", "edi-old-secret"],
                                                     "chorus_pro": ["chorus-secret"]})


async def test_both_secrets_of_a_rotation_are_accepted(rotating_tracker, publish, flow, read_topic, eventually):
    f = await known_invoice(rotating_tracker, publish, flow, eventually)
    async with httpx.AsyncClient(base_url=rotating_tracker.url) as client:
        old = await client.post("/v1/acks/edi", **signed(ack_body(f, ack_id="A-OLD"), secret="edi-old-secret"))
        new = await client.post("/v1/acks/edi", **signed(ack_body(f, ack_id="A-NEW"), secret="edi-new-secret"))
        # Another channel's secret, or the dev default, does not sign for edi.
        foreign = await client.post("/v1/acks/edi", **signed(ack_body(f, ack_id="A-X"), secret="chorus-secret"))
        dev = await client.post("/v1/acks/edi", **signed(ack_body(f, ack_id="A-Y")))
        unconfigured = await client.post("/v1/acks/ap_platform", **signed(ack_body(f, ack_id="A-Z")))
    assert (old.status_code, new.status_code, foreign.status_code, dev.status_code) == (202, 202, 401, 401)
    assert unconfigured.status_code == 404
    published = await read_topic(topics.DELIVERY_ACKED, until=lambda events: len(events) >= 2)
    assert sorted(event.ack_id for event in published) == ["A-NEW", "A-OLD"]

"""A polled batch's facts are recorded together (set-based); the outcome must be exactly what recording
them one by one gives: the same events in the same order per invoice, the same projection, timers,
incidents and journal verdicts. Runs the tracker's handler on a real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from parcours_contracts import DeliveryBounced
from parcours_runtime.handlers import BatchHandler
from parcours_runtime.db import create_engine, session_factory
from parcours_runtime.outbox import outbox_table
from parcours_runtime.service import prepare_database
from parcours_runtime.uow import UnitOfWork
from parcours_tracker import handlers
from parcours_tracker.app import definition
from parcours_tracker.store.journeys import Tracking
from parcours_tracker.store.models import Incident, Invoice, JournalEntry, ReceiptTimer


@pytest.fixture
async def tracker_db(make_database):
    """Factory: a fresh tracker database's sessions."""
    engines = []

    async def make():
        url = make_database("tracker")
        await prepare_database(definition(), url)
        engines.append(engine := create_engine(url, pool_size=2))
        return session_factory(engine)

    yield make
    for engine in engines:
        await engine.dispose()


def journeys(flow) -> list[list]:
    """Three invoices' events in arrival order: out of order, an incident opened then settled, an
    anomaly, a duplicate delivery, a second dispatch that resets the receipt timer."""
    a, b, c = flow(number="A-1"), flow(number="B-1"), flow(number="C-1")
    retry = uuid.uuid4()
    bounce = DeliveryBounced(tenant_id=c.tenant_id, invoice_id=c.invoice_id, correlation_id=c.correlation_id,
                             occurred_at=c.start + timedelta(minutes=3), dispatch_id=c.dispatch_id,
                             channel="email_link", recipient="ap@globex.example", message_id="<m1@parcours>",
                             permanent=True, status="5.1.1", diagnostic="no such user")
    dispatched_a = a.dispatched()
    return [
        [dispatched_a, a.received(), a.dispatch_requested(), dispatched_a,  # the duplicate comes back
         a.acked(ack_id="REJ", minute=5).model_copy(update={"status": "REJETEE"}),
         a.acked(ack_id="OK", minute=6).model_copy(update={"status": "APPROUVEE"})],  # an anomaly after REJETEE
        [b.received(), b.dispatch_requested(), b.failed(), b.dispatch_requested(minute=3, dispatch_id=retry),
         b.dispatched(minute=4, dispatch_id=retry)],  # failed incident opened, then settled by the retry
        [c.received(), c.dispatch_requested(), c.dispatched(), bounce, c.clicked(minute=5)],  # bounced, then viewed
    ]


def interleaved(lists: list[list]) -> list:
    out, lists = [], [list(events) for events in lists]
    while any(lists):
        for events in lists:
            if events:
                out.append(events.pop(0))
    return out


async def apply(sessions, handler: BatchHandler, events: list) -> None:
    async with UnitOfWork(sessions) as uow:
        await handler.handle(events, uow)
        await uow.commit()


async def outcome(sessions, invoice_ids: list[uuid.UUID]) -> list[dict]:
    """What the tracker holds and published per invoice, without ids and instants of its own."""
    async with sessions() as session:
        published = [json.loads(row.payload) for row in (await session.execute(
            select(outbox_table).order_by(outbox_table.c.id))).all()]
        described = []
        for invoice_id in invoice_ids:
            invoice = (await session.execute(select(Invoice).where(Invoice.invoice_id == invoice_id))).scalar_one()
            journal = (await session.execute(select(JournalEntry.kind, JournalEntry.detail, JournalEntry.occurred_at)
                                             .where(JournalEntry.invoice_id == invoice_id))).all()
            start = min(row.occurred_at for row in journal)
            incidents = (await session.execute(select(Incident.kind, Incident.status, Incident.resolution)
                                               .where(Incident.invoice_id == invoice_id))).all()
            timer = (await session.execute(select(ReceiptTimer.channel, ReceiptTimer.proof, ReceiptTimer.fired_at)
                                           .where(ReceiptTimer.invoice_id == invoice_id))).all()
            described.append({
                "invoice": (invoice.status, invoice.code, invoice.number, invoice.customer_ref,
                            invoice.correlation_id.startswith("corr-"), invoice.summary is not None),
                "milestones": [(moment - start).total_seconds() if moment else None for moment in (invoice.status_at, invoice.first_dispatched_at, invoice.acked_at,
                                              invoice.viewed_at)],
                "journal": sorted((row.kind, row.detail.get("fact_kind", ""), row.detail.get("kind", "")) for row in journal),
                "incidents": sorted(incidents), "timer": timer,
                "events": [(e["type"], e.get("status"), e.get("previous_status"), e.get("code"), e.get("kind"),
                            e.get("resolution")) for e in published if e["invoice_id"] == str(invoice_id)],
            })
    return described


async def test_a_batch_records_exactly_what_its_facts_record_one_by_one(tracker_db, flow):
    handler = handlers.build(SimpleNamespace(extras={"tracking": Tracking()}))[type(flow().received())]
    assert isinstance(handler, BatchHandler)

    alone, alone_db = journeys(flow), await tracker_db()
    for event in interleaved(alone):
        await apply(alone_db, handler, [event])
    expected = await outcome(alone_db, [events[0].invoice_id for events in alone])

    together, together_db = journeys(flow), await tracker_db()
    await apply(together_db, handler, interleaved(together))
    got = await outcome(together_db, [events[0].invoice_id for events in together])

    assert got == expected
    a, b, c = expected
    assert [e[1] for e in a["events"]] == ["sent", "REJETEE"] and ("anomaly", "acked", "") in a["journal"]
    assert [e[0] for e in b["events"]].count("incident.opened") == 1 and b["incidents"][0][1] == "resolved"
    assert c["invoice"][0] == "viewed" and c["incidents"][0][:2] == ("bounced", "resolved")

"""The read model built from batches of events (all the events of a polled batch recorded together):
each invoice ends as if its events had been applied one at a time, in order; redeliveries change nothing,
with the timeline's unique event id alone dropping them (the consumer claims no inbox rows for these events)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from parcours_contracts import IncidentResolved, PaymentPromised, PaymentRecorded
from parcours_portal.store.models import Invoice, Recipient, TimelineEntry
from parcours_runtime.inbox import inbox_table


async def test_batches_fold_each_invoices_events_in_order(portal, journey, publish, eventually):
    paid, open_ = journey(number="F-PAID"), journey(number="F-OPEN", customer_ref="CUST-2")
    first, second = paid.reminder(), paid.reminder()
    settled, still_open = open_.incident(), open_.incident()
    resolved = IncidentResolved(**open_._env(800), incident_id=settled.incident_id, resolution="called them")
    promise = PaymentPromised(**paid._env(900), promised_on=date.today() + timedelta(days=5), source="portal")
    payment = PaymentRecorded(**paid._env(1000), payment_id="P-1", amount=Decimal("200.00"), currency="EUR",
                              paid_on=date.today(), open_amount=Decimal("1000.00"), fully_paid=False, source="api")
    events = [*paid.delivered(), paid.lifecycle("viewed", 203, 40), paid.lifecycle("approved", 205, 50), first,
              second, first, promise, payment, *open_.delivered(), settled, still_open, resolved, settled]
    await publish(*events)

    async def rows():
        async with portal.ctx.sessions() as db:
            entries = await db.scalar(select(func.count()).select_from(TimelineEntry))
            if entries < len(events) - 2:  # two redeliveries
                return None
            invoices = {i.number: i for i in (await db.scalars(select(Invoice))).all()}
            recipients = sorted((await db.scalars(select(Recipient.email))).all())
            claimed = await db.scalar(select(func.count()).select_from(inbox_table).where(
                inbox_table.c.event_id.in_([event.event_id for event in events])))
            return entries, invoices, recipients, claimed

    entries, invoices, recipients, claimed = await eventually(rows, what="every event recorded")
    assert entries == len(events) - 2 and claimed == 0
    assert recipients == ["ap@cust-1.example", "ap@cust-2.example"]
    done, pending = invoices["F-PAID"], invoices["F-OPEN"]
    assert (done.status, done.code, done.channel, done.customer_ref) == ("approved", 205, "email_link", "CUST-1")
    assert done.status_at == paid.start + timedelta(minutes=50)
    assert (done.reminders, done.last_reminder["step"]) == (2, "first-reminder")
    assert (done.total, done.open_amount, done.promised_on) == (Decimal("1200.00"), Decimal("1000.00"),
                                                                 promise.promised_on)
    assert (pending.status, pending.open_incidents, pending.reminders) == ("sent", 1, 0)
    assert pending.open_amount == Decimal("1200.00") and pending.last_reminder is None

"""Routing from events on the real broker: invoices and reminders to the customer's
preferred channel, unknown customers to InvoiceUnroutable, permanent failures to the next
channel, duplicates absorbed by the inbox."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select

from parcours_contracts import (
    DispatchFailed,
    DispatchRequested,
    InvoiceUnroutable,
    Penalties,
    ReminderDue,
    ReminderInfo,
    topics,
)
from parcours_router.store.dispatches import Dispatch


def of_invoice(invoice_id):
    return lambda event: event.invoice_id == invoice_id


async def dispatch_rows(router, invoice_id) -> list[Dispatch]:
    async with router.ctx.sessions() as session:
        return list((await session.scalars(
            select(Dispatch).where(Dispatch.invoice_id == invoice_id).order_by(Dispatch.created_at))).all())


async def test_invoice_of_a_known_customer_becomes_one_dispatch_request(router, client_for, helpers, publish,
                                                                        read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body())
    requested = await read_topic(topics.DISPATCH_REQUESTED)
    received = helpers.invoice_received("CUST-ALPHA")

    await publish(received, received)  # delivered twice, as an at-least-once relay may
    # A later event on the same invoice (same key, same partition) marks when both copies were handled.
    marker = ReminderDue.following(received, reminder=ReminderInfo(strategy="default", step="marker", sequence=1),
                                   reason="marker", invoice=received.invoice)
    await publish(marker)
    events = await requested.wait_for(of_invoice(received.invoice_id), count=2)

    invoice_requests = [e for e in events if e.purpose == "invoice"]
    assert len(invoice_requests) == 1, "the duplicate had no second effect"
    request = invoice_requests[0]
    assert isinstance(request, DispatchRequested)
    assert request.tenant_id == "acme" and request.correlation_id == received.correlation_id
    assert request.channel == "email_link" and request.fallback_channels == ["email_attachment"]
    assert [(r.email, r.name) for r in request.recipients] == [("ap@alpha.example", "Accounts payable"),
                                                               ("cfo@alpha.example", None)]
    assert request.invoice == received.invoice and request.reminder is None
    assert request.language == "fr", "the customer's language travels with the request"

    rows = await dispatch_rows(router, received.invoice_id)
    assert [row.dispatch_id for row in rows if row.purpose == "invoice"] == [request.dispatch_id]


async def test_unknown_customer_makes_the_invoice_unroutable(router, client_for, helpers, publish, read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body())
    unroutable = await read_topic(topics.INVOICE_UNROUTABLE)
    requested = await read_topic(topics.DISPATCH_REQUESTED)

    unknown = helpers.invoice_received("CUST-NOBODY")
    other_tenant = helpers.invoice_received("CUST-ALPHA", tenant_id="globex")
    known = helpers.invoice_received("CUST-ALPHA")
    await publish(unknown, other_tenant, known)

    found = await unroutable.wait_for(lambda e: e.invoice_id in (unknown.invoice_id, other_tenant.invoice_id), count=2)
    by_invoice = {event.invoice_id: event for event in found}
    assert isinstance(by_invoice[unknown.invoice_id], InvoiceUnroutable)
    assert by_invoice[unknown.invoice_id].customer_ref == "CUST-NOBODY"
    assert by_invoice[unknown.invoice_id].reason == "unknown customer CUST-NOBODY"
    assert by_invoice[unknown.invoice_id].purpose == "invoice"
    assert by_invoice[unknown.invoice_id].correlation_id == unknown.correlation_id
    assert by_invoice[other_tenant.invoice_id].tenant_id == "globex"
    assert by_invoice[other_tenant.invoice_id].reason == "unknown customer CUST-ALPHA", "acme's directory is not globex's"

    await requested.wait_for(of_invoice(known.invoice_id))
    assert not [e for e in await requested.drain() if e.invoice_id in (unknown.invoice_id, other_tenant.invoice_id)]
    assert await dispatch_rows(router, unknown.invoice_id) == []


async def test_reminder_due_becomes_a_reminder_dispatch(router, client_for, helpers, publish, read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-BETA", json=helpers.customer_body(
        channels=["email_attachment"], contacts=[{"email": "factures@beta.example", "name": "Claire Martin"}]))
    requested = await read_topic(topics.DISPATCH_REQUESTED)
    unroutable = await read_topic(topics.INVOICE_UNROUTABLE)

    received = helpers.invoice_received("CUST-BETA")
    step = ReminderInfo(strategy="default", step="first-reminder", sequence=1)
    due = ReminderDue.following(received, reminder=step, reason="due date passed", invoice=received.invoice)
    lost = helpers.invoice_received("CUST-GONE")
    due_for_unknown = ReminderDue.following(lost, reminder=step, reason="due date passed", invoice=lost.invoice)
    await publish(due, due_for_unknown)

    [request] = await requested.wait_for(of_invoice(received.invoice_id))
    assert request.purpose == "reminder" and request.reminder == step
    assert request.channel == "email_attachment" and request.fallback_channels == []
    assert [r.email for r in request.recipients] == ["factures@beta.example"]
    assert request.invoice == received.invoice and request.correlation_id == received.correlation_id

    [incident] = await unroutable.wait_for(of_invoice(lost.invoice_id))
    assert incident.purpose == "reminder" and incident.customer_ref == "CUST-GONE"


async def test_permanent_failures_fall_back_channel_by_channel_then_unroutable(router, client_for, helpers, publish,
                                                                                read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body())
    requested = await read_topic(topics.DISPATCH_REQUESTED)
    unroutable = await read_topic(topics.INVOICE_UNROUTABLE)
    received = helpers.invoice_received("CUST-ALPHA")
    await publish(received)
    [first] = await requested.wait_for(of_invoice(received.invoice_id))

    # The directory changes after the decision: the fallback follows what was decided then.
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body(
        channels=["email_attachment"], contacts=[{"email": "new@alpha.example"}]))

    def failure(of: DispatchRequested, *, permanent: bool = True, reason: str = "mailbox does not exist"):
        return DispatchFailed.following(of, dispatch_id=of.dispatch_id, channel=of.channel, reason=reason,
                                        permanent=permanent, fallback_channels=of.fallback_channels)

    transient = failure(first, permanent=False, reason="SMTP timeout")
    stranger = DispatchFailed.following(received, dispatch_id=uuid.uuid4(), channel="email_link", reason="?",
                                        fallback_channels=["email_attachment"])
    await publish(transient, stranger, failure(first))
    second = (await requested.wait_for(of_invoice(received.invoice_id), count=2))[1]
    assert second.dispatch_id != first.dispatch_id
    assert second.channel == "email_attachment" and second.fallback_channels == []
    assert second.recipients == first.recipients and second.invoice == first.invoice
    assert second.purpose == "invoice" and second.correlation_id == received.correlation_id
    assert second.language == first.language

    repeated = failure(first)  # a second report of the same failure (another event id)
    await publish(repeated, failure(second, reason="attachment rejected"))
    [incident] = await unroutable.wait_for(of_invoice(received.invoice_id))
    assert incident.reason == "all channels failed: attachment rejected"
    assert incident.customer_ref == "CUST-ALPHA" and incident.purpose == "invoice"

    await unroutable.drain()
    requests = [e for e in await requested.drain() if e.invoice_id == received.invoice_id]
    assert len(requests) == 2, "transient, unknown and repeated failures requested nothing"
    assert len([e for e in unroutable.seen if e.invoice_id == received.invoice_id]) == 1
    rows = await dispatch_rows(router, received.invoice_id)
    assert [(row.channel, row.failure_handled_at is not None) for row in rows] == [
        ("email_link", True), ("email_attachment", True)]


async def test_a_reminder_goes_first_on_the_channel_its_step_asks_for(router, client_for, helpers, publish,
                                                                      read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body())  # email_link, then email_attachment
    requested = await read_topic(topics.DISPATCH_REQUESTED)
    asked, ignored = helpers.invoice_received("CUST-ALPHA"), helpers.invoice_received("CUST-ALPHA", number="INV-2")
    step = ReminderInfo(strategy="letters", step="curative_1", sequence=3, channel="email_attachment",
                        template="curative")
    unknown = ReminderInfo(strategy="letters", step="curative_1", sequence=3, channel="fax")
    await publish(ReminderDue.following(asked, reminder=step, reason="overdue", invoice=asked.invoice),
                  ReminderDue.following(ignored, reminder=unknown, reason="overdue", invoice=ignored.invoice))

    [request] = await requested.wait_for(of_invoice(asked.invoice_id))
    assert (request.channel, request.fallback_channels, request.reminder) == ("email_attachment", ["email_link"], step)
    [fallback] = await requested.wait_for(of_invoice(ignored.invoice_id))
    assert (fallback.channel, fallback.fallback_channels) == ("email_link", ["email_attachment"]), \
        "a channel the platform does not offer is ignored"


async def test_reminder_fallback_keeps_the_reminder(router, client_for, helpers, publish, read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body())
    requested = await read_topic(topics.DISPATCH_REQUESTED)
    unroutable = await read_topic(topics.INVOICE_UNROUTABLE)
    received = helpers.invoice_received("CUST-ALPHA")
    step = ReminderInfo(strategy="default", step="final-notice", sequence=3)
    penalties = Penalties(indemnity=Decimal("40.00"), interest=Decimal("1.33"), rate=Decimal("12.15"), days_late=4,
                          base=Decimal("1000.00"))
    await publish(ReminderDue.following(received, reminder=step, reason="overdue", invoice=received.invoice,
                                        penalties=penalties))
    [first] = await requested.wait_for(of_invoice(received.invoice_id))
    assert first.penalties == penalties, "the penalties travel on to the channel"

    await publish(DispatchFailed.following(first, dispatch_id=first.dispatch_id, channel=first.channel,
                                           purpose="reminder", reminder=step, reason="bounced"))
    second = (await requested.wait_for(of_invoice(received.invoice_id), count=2))[1]
    assert (second.purpose, second.reminder, second.channel) == ("reminder", step, "email_attachment")
    assert second.penalties == penalties, "and the fallback states them too"

    await publish(DispatchFailed.following(second, dispatch_id=second.dispatch_id, channel=second.channel,
                                           purpose="reminder", reminder=step, reason="too large"))
    [incident] = await unroutable.wait_for(of_invoice(received.invoice_id))
    assert incident.purpose == "reminder" and incident.reason == "all channels failed: too large"

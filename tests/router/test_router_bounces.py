"""Hard bounces on the real broker: once every recipient of a dispatch bounced, the delivery
falls back to the next channel exactly as after a permanent failure; soft bounces, partial
bounces and repeated reports request nothing."""

from __future__ import annotations

from sqlalchemy import select

from parcours_contracts import DeliveryBounced, DispatchFailed, DispatchRequested, topics
from parcours_router.store.dispatches import Dispatch


def of_invoice(invoice_id):
    return lambda event: event.invoice_id == invoice_id


def bounce(of: DispatchRequested, recipient: str, *, permanent: bool = True, status: str = "5.1.1",
           diagnostic: str = "550 5.1.1 User unknown") -> DeliveryBounced:
    return DeliveryBounced.following(of, dispatch_id=of.dispatch_id, channel=of.channel, purpose=of.purpose,
                                     recipient=recipient, message_id=f"<{of.dispatch_id}.x@parcours.localhost>",
                                     permanent=permanent, status=status, diagnostic=diagnostic)


async def test_hard_bounces_from_every_recipient_fall_back_then_make_the_invoice_unroutable(
        router, client_for, helpers, publish, read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body())  # two contacts, two channels
    requested = await read_topic(topics.DISPATCH_REQUESTED)
    unroutable = await read_topic(topics.INVOICE_UNROUTABLE)
    received = helpers.invoice_received("CUST-ALPHA")
    await publish(received)
    [first] = await requested.wait_for(of_invoice(received.invoice_id))
    assert first.channel == "email_link" and len(first.recipients) == 2

    # A soft bounce, then one hard bounce of two: the invoice still reached the other recipient.
    await publish(bounce(first, "ap@alpha.example", permanent=False, status="4.2.2"),
                  bounce(first, "AP@alpha.example"))
    # The second recipient's hard bounce: nobody got it, next channel.
    await publish(bounce(first, "cfo@alpha.example"))
    second = (await requested.wait_for(of_invoice(received.invoice_id), count=2))[1]
    assert (second.channel, second.fallback_channels) == ("email_attachment", [])
    assert second.recipients == first.recipients and second.correlation_id == received.correlation_id

    # The same failure reported again, as a bounce or as a failed dispatch, acts no more.
    await publish(bounce(first, "cfo@alpha.example"),
                  DispatchFailed.following(first, dispatch_id=first.dispatch_id, channel=first.channel,
                                           reason="late report"))
    # The last channel's messages bounce too: nothing left to try.
    await publish(bounce(second, "ap@alpha.example"), bounce(second, "cfo@alpha.example", status="5.2.1",
                                                             diagnostic="550 mailbox disabled"))
    [incident] = await unroutable.wait_for(of_invoice(received.invoice_id))
    assert incident.reason == "all channels failed: bounced: cfo@alpha.example 5.2.1 550 mailbox disabled"
    assert incident.customer_ref == "CUST-ALPHA" and incident.purpose == "invoice"

    await unroutable.drain()
    assert len([e for e in await requested.drain() if e.invoice_id == received.invoice_id]) == 2
    assert len([e for e in unroutable.seen if e.invoice_id == received.invoice_id]) == 1
    async with router.ctx.sessions() as session:
        rows = list(await session.scalars(select(Dispatch).where(Dispatch.invoice_id == received.invoice_id)
                                          .order_by(Dispatch.created_at)))
    assert [(row.channel, sorted(row.bounced_recipients or []), row.failure_handled_at is not None)
            for row in rows] == [
        ("email_link", ["ap@alpha.example", "cfo@alpha.example"], True),
        ("email_attachment", ["ap@alpha.example", "cfo@alpha.example"], True)]


async def test_a_bounce_of_another_tenants_dispatch_is_ignored(router, client_for, helpers, publish, read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-BETA", json=helpers.customer_body(contacts=[{"email": "ap@beta.example"}]))
    requested = await read_topic(topics.DISPATCH_REQUESTED)
    received = helpers.invoice_received("CUST-BETA")
    await publish(received)
    [first] = await requested.wait_for(of_invoice(received.invoice_id))

    forged = bounce(first, "ap@beta.example").model_copy(update={"tenant_id": "globex"})
    await publish(forged, bounce(first, "ap@beta.example"))
    second = (await requested.wait_for(of_invoice(received.invoice_id), count=2))[1]
    assert second.channel == "email_attachment" and second.tenant_id == "acme"
    assert len([e for e in await requested.drain() if e.invoice_id == received.invoice_id]) == 2

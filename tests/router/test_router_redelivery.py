"""Redelivery asked from the console (portal.actions): the invoice last dispatched goes again, on
the channel asked for (switch channel) or on the customer's channels (resend); an invoice never
dispatched, or a channel the platform does not offer, makes it unroutable, with the reason."""

from __future__ import annotations

import uuid

from parcours_contracts import RedeliveryRequested, topics


def of_invoice(invoice_id):
    return lambda event: event.invoice_id == invoice_id


async def test_resend_and_switch_channel_from_the_console(router, client_for, helpers, publish, read_topic):
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-GAMMA", json=helpers.customer_body())  # email_link, then email_attachment
    requested = await read_topic(topics.DISPATCH_REQUESTED)
    unroutable = await read_topic(topics.INVOICE_UNROUTABLE)
    received = helpers.invoice_received("CUST-GAMMA", number="INV-GAMMA")
    await publish(received)
    [first] = await requested.wait_for(of_invoice(received.invoice_id))

    switch = RedeliveryRequested.following(received, channel="email_attachment", actor="cm@acme.example",
                                           incident_id=uuid.uuid4())
    await publish(switch)
    second = (await requested.wait_for(of_invoice(received.invoice_id), count=2))[1]
    assert (second.channel, second.fallback_channels, second.purpose) == ("email_attachment", ["email_link"],
                                                                          "invoice")
    assert second.invoice == first.invoice and second.dispatch_id != first.dispatch_id
    assert second.recipients == first.recipients and second.correlation_id == received.correlation_id

    await publish(RedeliveryRequested.following(received, actor="cm@acme.example"), switch)  # the switch: redelivered
    third = (await requested.wait_for(of_invoice(received.invoice_id), count=3))[2]
    assert (third.channel, third.fallback_channels) == ("email_link", ["email_attachment"])

    never = helpers.invoice_received("CUST-GAMMA", number="INV-NEVER")
    await publish(RedeliveryRequested.following(never, actor="cm@acme.example"))
    [incident] = await unroutable.wait_for(of_invoice(never.invoice_id))
    assert "never dispatched" in incident.reason
    await publish(RedeliveryRequested.following(received, channel="carrier_pigeon", actor="cm@acme.example"))
    [refused] = await unroutable.wait_for(of_invoice(received.invoice_id))
    assert (refused.reason, refused.customer_ref) == ("redelivery requested on carrier_pigeon, which is not offered",
                                                      "CUST-GAMMA")
    assert len([e for e in await requested.drain() if e.invoice_id == received.invoice_id]) == 3

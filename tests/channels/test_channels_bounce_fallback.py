"""The loop the issue asks for, on the real broker with both services running: an invoice
email bounces back over SMTP, and the router sends it again on the customer's next channel."""

from __future__ import annotations

import uuid

import aiosmtplib
import httpx

from parcours_contracts import DeliveryBounced, DispatchRequested, InvoiceReceived, topics

DSN = (
    "From: MAILER-DAEMON@mx.buyer.example\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"\r\n\r\n'
    "--RPT\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
    "--RPT\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.buyer.example\r\n\r\n"
    "Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
    "--RPT\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\n\r\n--RPT--\r\n"
)


async def test_a_hard_bounce_sends_the_invoice_again_on_the_next_channel(run_service, start_channels, sink,
                                                                        tenant_key, publish, make_dispatch):
    router = await run_service("router")
    channels = await start_channels()
    key = await tenant_key(router, tenant_id="acme")
    async with httpx.AsyncClient(base_url=router.url, headers={"Authorization": f"Bearer {key}"}) as client:
        answer = await client.put("/v1/customers/CUST-7", json={
            "name": "Boulangerie Martin", "channels": ["email_link", "email_attachment"],
            "contacts": [{"email": "jeanne@buyer.example", "name": "Jeanne Martin"}]})
        assert answer.status_code in (200, 201), answer.text

    invoice_id = uuid.uuid4()
    await publish(InvoiceReceived(tenant_id="acme", invoice_id=invoice_id, correlation_id=f"corr-{invoice_id}",
                                  invoice=make_dispatch().invoice))
    (first,) = await sink.wait_for(1, timeout=30)

    # The buyer's server bounces the message to its return path, as a real MTA would.
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=channels.bounce_port, timeout=10) as smtp:
        await smtp.mail("")
        await smtp.rcpt(first["mail_from"])
        await smtp.data(DSN.format(rcpt="jeanne@buyer.example", message_id=first["message_id"]).encode())

    _, second = await sink.wait_for(2, timeout=30)
    assert second["rcpt_tos"] == ["jeanne@buyer.example"] and second["message_id"] != first["message_id"]
    events = await channels.read(topics.DISPATCH_REQUESTED, topics.DELIVERY_BOUNCED)
    requests = [e for e in events if isinstance(e, DispatchRequested)]
    (bounce,) = [e for e in events if isinstance(e, DeliveryBounced)]
    assert [r.channel for r in requests] == ["email_link", "email_attachment"]
    assert (bounce.dispatch_id, bounce.recipient, bounce.permanent) == (
        requests[0].dispatch_id, "jeanne@buyer.example", True)
    assert first["message_id"].startswith(f"<{requests[0].dispatch_id}.")
    assert second["message_id"].startswith(f"<{requests[1].dispatch_id}.")
    assert {r.correlation_id for r in requests} | {bounce.correlation_id} == {f"corr-{invoice_id}"}

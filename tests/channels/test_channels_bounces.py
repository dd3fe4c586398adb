"""Bounces coming back over real SMTP to the bounce endpoint the service runs: correlated by
the signed return path (or the returned Message-ID), recorded in the ledger, published as
DeliveryBounced; forged or foreign mail changes nothing."""

from __future__ import annotations

import uuid

import aiosmtplib
import pytest
from sqlalchemy import select

from parcours_channels.domain.verp import verp_address
from parcours_channels.store.sends import Send
from parcours_contracts import DeliveryBounced, Recipient

BOUNCE_DOMAIN = "bounces.parcours.localhost"


def delivery_status_notification(*, final_recipient: str, action: str = "failed", status: str = "5.1.1",
                                 diagnostic: str = "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected:\r\n"
                                                   " User unknown in virtual mailbox table",
                                 original_message_id: str | None = None) -> bytes:
    """An RFC 3464 report as Postfix writes one, returning the original message's headers."""
    returned = (f"Message-ID: {original_message_id}\r\n" if original_message_id else "") + \
        "From: Parcours <invoices@parcours.localhost>\r\nSubject: Facture F-2026-0042\r\n"
    return (
        "From: MAILER-DAEMON@mx.buyer.example (Mail Delivery System)\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"\r\n'
        "\r\n--RPT\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n--RPT\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.buyer.example\r\nArrival-Date: Sat, 28 Nov 2026 10:00:00 +0100\r\n\r\n"
        f"Final-Recipient: rfc822; {final_recipient}\r\nOriginal-Recipient: rfc822;{final_recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: {diagnostic.format(rcpt=final_recipient)}\r\n"
        "\r\n--RPT\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{returned}"
        "\r\n--RPT--\r\n"
    ).encode()


async def send_bounce(channels, raw: bytes, to: str) -> None:
    """Hand a bounce to the endpoint as a remote MTA would: null sender, over SMTP."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=channels.bounce_port, local_hostname="mx.buyer.example",
                               timeout=10) as smtp:
        await smtp.mail("")  # MAIL FROM:<>, as every bounce: nothing may bounce back
        await smtp.rcpt(to)
        await smtp.data(raw)


async def ledger_row(channels, dispatch_id, recipient) -> Send:
    async with channels.host.ctx.sessions() as session:
        return (await session.scalars(select(Send).where(Send.dispatch_id == dispatch_id,
                                                         Send.recipient == recipient))).one()


@pytest.fixture
async def delivered(channels, sink, make_dispatch):
    """A dispatch to two recipients, delivered: what a bounce can be about."""
    request = make_dispatch(purpose="invoice")
    await channels.publish(request)
    await channels.settle()
    return request, {m["rcpt_tos"][0]: m for m in sink.messages()}


async def test_a_hard_bounce_to_the_return_path_is_published_once_and_marks_the_send(channels, delivered,
                                                                                     make_dispatch):
    request, received = delivered
    jeanne = received["jeanne@buyer.example"]
    dsn = delivery_status_notification(final_recipient="jeanne@buyer.example")

    await send_bounce(channels, dsn, to=jeanne["mail_from"])  # the envelope sender the message went out with
    (bounce,) = await channels.bounces(at_least=1)
    assert isinstance(bounce, DeliveryBounced)
    assert (bounce.dispatch_id, bounce.recipient, bounce.permanent, bounce.status) == (
        request.dispatch_id, "jeanne@buyer.example", True, "5.1.1")
    assert (bounce.tenant_id, bounce.invoice_id, bounce.correlation_id) == (
        request.tenant_id, request.invoice_id, request.correlation_id)
    assert (bounce.channel, bounce.purpose, bounce.message_id) == ("email_link", "invoice", jeanne["message_id"])
    assert bounce.diagnostic == ("550 5.1.1 <jeanne@buyer.example>: Recipient address rejected: "
                                 "User unknown in virtual mailbox table"), "the folded line unfolded"
    row = await ledger_row(channels, request.dispatch_id, "jeanne@buyer.example")
    assert (row.state, row.bounce_status) == ("bounced", "5.1.1") and row.bounced_at is not None
    assert (await ledger_row(channels, request.dispatch_id, "compta@buyer.example")).state == "sent"

    # The remote MTA retries (our answer was lost): nothing new. The dispatch redelivered: nobody re-sent.
    await send_bounce(channels, dsn, to=jeanne["mail_from"])
    resent = request.model_copy(update={"event_id": uuid.uuid4()})
    await channels.publish(resent)
    await channels.settle()
    assert len(await channels.bounces()) == 1
    assert (await ledger_row(channels, request.dispatch_id, "jeanne@buyer.example")).attempts == 1


async def test_a_delayed_delivery_is_a_soft_bounce_that_leaves_the_send_as_sent(channels, delivered):
    request, received = delivered
    compta = received["compta@buyer.example"]
    await send_bounce(channels, delivery_status_notification(
        final_recipient="compta@buyer.example", action="delayed", status="4.4.1",
        diagnostic="smtp; 421 4.4.1 mx.buyer.example: connection timed out"), to=compta["mail_from"])

    (bounce,) = await channels.bounces(at_least=1)
    assert (bounce.recipient, bounce.permanent, bounce.status) == ("compta@buyer.example", False, "4.4.1")
    row = await ledger_row(channels, request.dispatch_id, "compta@buyer.example")
    assert (row.state, row.bounce_status) == ("sent", "4.4.1")


async def test_a_bounce_without_return_path_is_matched_by_its_returned_message_id(channels, delivered):
    request, received = delivered
    compta = received["compta@buyer.example"]
    # A server that bounces to another address of the domain: the returned headers still name the message.
    await send_bounce(channels, delivery_status_notification(
        final_recipient="someone-else@buyer.example", original_message_id=compta["message_id"]),
        to=f"postmaster@{BOUNCE_DOMAIN}")
    await send_bounce(channels, delivery_status_notification(
        final_recipient="compta@buyer.example", original_message_id=compta["message_id"]),
        to=f"postmaster@{BOUNCE_DOMAIN}")

    (bounce,) = await channels.bounces(at_least=1)
    assert (bounce.dispatch_id, bounce.recipient, bounce.message_id, bounce.permanent) == (
        request.dispatch_id, "compta@buyer.example", compta["message_id"], True), \
        "a report naming another recipient than the message's is not about it"


async def test_forged_and_foreign_mail_changes_nothing(channels, delivered):
    request, received = delivered
    jeanne = received["jeanne@buyer.example"]
    dsn = delivery_status_notification(final_recipient="jeanne@buyer.example")

    forged = verp_address("someone-elses-secret", domain=BOUNCE_DOMAIN, dispatch_id=request.dispatch_id,
                          recipient="jeanne@buyer.example")
    local, _, domain = jeanne["mail_from"].partition("@")
    tampered = [local[:i] + ("a" if local[i] != "a" else "b") + local[i + 1:] + "@" + domain
                for i in (20, len(local) - 1)]  # a MAC'd byte; the last character's spare bits
    for address in (forged, *tampered, f"bounce+nonsense@{BOUNCE_DOMAIN}"):
        await send_bounce(channels, dsn, to=address)  # accepted (250), so nobody retries, and dropped
    # An out-of-office reply to the genuine return path is no bounce.
    auto_reply = (b"From: jeanne@buyer.example\r\nSubject: Absence\r\nAuto-Submitted: auto-replied\r\n\r\n"
                  b"Je suis absente jusqu'au 3 janvier.\r\n")
    await send_bounce(channels, auto_reply, to=jeanne["mail_from"])

    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:  # we are no open relay
        await send_bounce(channels, dsn, to="jeanne@buyer.example")
    assert refused.value.code == 550

    assert await channels.bounces() == []
    assert (await ledger_row(channels, request.dispatch_id, "jeanne@buyer.example")).state == "sent"


async def test_a_free_form_bounce_to_the_return_path_is_read_by_heuristics(channels, make_dispatch, sink):
    request = make_dispatch(recipients=[Recipient(email="old@buyer.example")])
    await channels.publish(request)
    await channels.settle()
    (message,) = sink.messages()
    # qmail's format: no delivery-status part, only prose with the failed address.
    qmail = (b"From: MAILER-DAEMON@mx.buyer.example\r\nSubject: failure notice\r\n\r\n"
             b"Hi. This is the qmail-send program at mx.buyer.example.\r\n"
             b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
             b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
             b"<old@buyer.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
             b"--- Below this line is a copy of the message.\r\n\r\nSubject: Facture\r\n\r\nBonjour\r\n")
    await send_bounce(channels, qmail, to=message["mail_from"])

    (bounce,) = await channels.bounces(at_least=1)
    assert (bounce.dispatch_id, bounce.recipient, bounce.permanent, bounce.status) == (
        request.dispatch_id, "old@buyer.example", True, None)

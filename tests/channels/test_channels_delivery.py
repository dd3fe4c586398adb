"""DispatchRequested → emails in a real SMTP sink → InvoiceDispatched / DispatchFailed on the broker."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import select

from parcours_channels.adapters.send_once import SEND_LEDGER
from parcours_channels.domain.verp import read_verp_address, recipient_digest, verp_address
from parcours_channels.domain.wording import message_id_for
from parcours_channels.store.sends import Send
from parcours_contracts import DispatchFailed, DispatchRequested, InvoiceDispatched, Penalties, Recipient, ReminderInfo
from parcours_runtime.links import verify_link_token

LINK_SECRET = "test-link-secret"
BOUNCE_SECRET = "test-bounce-secret"
# Deferred retries within a test's patience: 0.2 s, then 0.4 s…, looked for every 0.1 s.
QUICK_RETRIES = {"smtp_retry_first_seconds": 0.2, "smtp_retry_poll_seconds": 0.1}
LINK = re.compile(r"http://127\.0\.0\.1:8104/l/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


def parts(sink, message: dict) -> tuple[str, str]:
    detail = sink.message(message["id"])
    return detail["text"], detail["html"]


async def ledger(channels, dispatch_id) -> dict[str, Send]:
    async with channels.host.ctx.sessions() as session:
        rows = await session.scalars(select(Send).where(Send.dispatch_id == dispatch_id))
        return {row.recipient: row for row in rows}


async def test_each_recipient_gets_one_tracked_email_and_the_dispatch_is_reported(channels, sink, make_dispatch):
    request = make_dispatch()
    await channels.publish(request)
    await channels.settle()

    received = sink.messages()
    assert sorted(m["rcpt_tos"][0] for m in received) == ["compta@buyer.example", "jeanne@buyer.example"]
    for message in received:
        address = message["rcpt_tos"][0]
        assert message["message_id"] == message_id_for(request.dispatch_id, address, "parcours.localhost")
        assert re.fullmatch(rf"<{request.dispatch_id}\.[0-9a-f]{{12}}@parcours\.localhost>", message["message_id"])
        assert message["subject"] == "Facture F-2026-0042 de Ateliers Dupont SAS"
        assert message["from"] == "Parcours <invoices@parcours.localhost>"
        # Bounces come back to a return path of this very message, signed so it cannot be forged.
        assert message["mail_from"] == verp_address(BOUNCE_SECRET, domain="bounces.parcours.localhost",
                                                    dispatch_id=request.dispatch_id, recipient=address)
        assert len(message["mail_from"].partition("@")[0]) <= 64, "SMTP's limit on a local part"
        claims = read_verp_address([BOUNCE_SECRET], message["mail_from"], domain="bounces.parcours.localhost")
        assert (claims.dispatch_id, claims.recipient_digest) == (request.dispatch_id, recipient_digest(address))
        assert abs(parsedate_to_datetime(message["date"]) - datetime.now(timezone.utc)) < timedelta(minutes=1)
        parsed = email.message_from_bytes(message["raw"], policy=email.policy.default)
        assert parsed.get_content_type() == "multipart/alternative"

        text, html = parts(sink, message)
        assert "1\u202f234,50\u00a0€" in text and "1 décembre 2026" in text
        (link,) = set(LINK.findall(text))
        assert set(LINK.findall(html)) == {link}, "text and HTML carry the same link"
        claims = verify_link_token(LINK_SECRET, link)
        assert (claims.tenant_id, claims.invoice_id, claims.dispatch_id, claims.recipient) == (
            "acme", request.invoice_id, request.dispatch_id, address)
    jeanne = sink.messages("jeanne@buyer.example")[0]
    assert jeanne["to"] == "Jeanne Martin <jeanne@buyer.example>"
    assert parts(sink, jeanne)[0].startswith("Bonjour Jeanne Martin,")

    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, InvoiceDispatched)
    assert (outcome.dispatch_id, outcome.channel, outcome.purpose) == (request.dispatch_id, "email_link", "invoice")
    assert (outcome.tenant_id, outcome.invoice_id, outcome.correlation_id) == (
        request.tenant_id, request.invoice_id, request.correlation_id)
    assert {(m.recipient, m.message_id) for m in outcome.messages} == {
        (m["rcpt_tos"][0], m["message_id"]) for m in received}


async def test_a_redelivered_dispatch_sends_nothing_twice_and_is_still_reported(channels, sink, make_dispatch):
    request = make_dispatch()
    # The same event twice (a relay resending it), then the same dispatch under a new event id:
    # the inbox absorbs the first duplicate, the send-once ledger the second.
    resent = request.model_copy(update={"event_id": uuid.uuid4()})
    await channels.publish(request, request, resent)
    await channels.settle()

    assert sorted(m["rcpt_tos"][0] for m in sink.messages()) == ["compta@buyer.example", "jeanne@buyer.example"]
    outcomes = await channels.outcomes()
    assert [type(o) for o in outcomes] == [InvoiceDispatched, InvoiceDispatched]
    assert outcomes[0].messages == outcomes[1].messages, "the second report names the messages sent the first time"
    rows = await ledger(channels, request.dispatch_id)
    assert {r.state for r in rows.values()} == {"sent"}
    assert {r.attempts for r in rows.values()} == {1}, "the resent dispatch found them sent and tried nothing"


async def test_concurrent_acceptances_are_recorded_together(channels, sink, make_dispatch):
    """The ledger writes an acceptance as soon as nothing else is being written, and those that arrive
    meanwhile together after it: fewer transactions than messages, every message recorded sent once."""
    requests = [make_dispatch() for _ in range(20)]
    await channels.publish(*requests)
    await channels.settle()

    assert len(sink.messages()) == 40
    for request in requests:
        assert {r.state for r in (await ledger(channels, request.dispatch_id)).values()} == {"sent"}
    acceptances = channels.host.ctx.extras[SEND_LEDGER].acceptances
    assert 1 <= acceptances.groups_written < 40


async def test_a_reminder_reads_as_a_reminder_of_its_step(channels, sink, make_dispatch):
    request = make_dispatch(purpose="reminder", recipients=[Recipient(email="compta@buyer.example")],
                            reminder=ReminderInfo(strategy="default", step="second-notice", sequence=2))
    await channels.publish(request)
    await channels.settle()

    (message,) = sink.messages()
    assert message["subject"] == "Rappel : facture F-2026-0042 de Ateliers Dupont SAS"
    text, html = parts(sink, message)
    assert "Malgré notre précédent rappel" in text and "Malgré notre précédent rappel" in html
    assert "reste impayée" in text and "ne pas tenir compte de ce message" in text
    assert "Indemnité forfaitaire" not in text, "no penalties stated when the request carries none"
    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, InvoiceDispatched)
    assert (outcome.purpose, outcome.reminder) == ("reminder", request.reminder)


async def test_a_curative_reminder_states_its_penalties(channels, sink, make_dispatch):
    penalties = Penalties(indemnity=Decimal("40"), interest=Decimal("12.5"), rate=Decimal("12.15"), days_late=30,
                          base=Decimal("1250.00"))
    request = make_dispatch(purpose="reminder", recipients=[Recipient(email="compta@buyer.example")],
                            reminder=ReminderInfo(strategy="default", step="curative_1", sequence=3),
                            penalties=penalties)
    await channels.publish(request)
    await channels.settle()

    (message,) = sink.messages()
    text, html = parts(sink, message)
    nbsp = "\u00a0"
    line = (f"Indemnité forfaitaire de recouvrement : 40,00{nbsp}€ ; intérêts de retard : 12,50{nbsp}€ "
            f"(taux 12,15{nbsp}%)")
    assert line in text
    assert f"<strong>40,00{nbsp}€</strong>" in html and f"(taux 12,15{nbsp}%)" in html


async def test_a_permanent_refusal_fails_the_dispatch_with_its_fallbacks(channels, sink, make_dispatch):
    request = make_dispatch(recipients=[Recipient(email="gone@buyer.example")], fallback_channels=["postal", "peppol"],
                            purpose="reminder", reminder=ReminderInfo(strategy="default", step="final", sequence=3))
    sink.reject_next(1, 550, "5.1.1 No such mailbox")
    await channels.publish(request)
    await channels.settle()

    assert sink.messages() == []
    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, DispatchFailed)
    assert outcome.permanent is True
    assert outcome.fallback_channels == ["postal", "peppol"]
    assert (outcome.dispatch_id, outcome.channel, outcome.reminder) == (request.dispatch_id, "email_link",
                                                                        request.reminder)
    assert "gone@buyer.example" in outcome.reason and "550" in outcome.reason and "No such mailbox" in outcome.reason


async def test_a_refused_recipient_does_not_fail_the_dispatch_of_the_others(channels, sink, make_dispatch):
    request = make_dispatch()
    sink.reject_next(1, 550, stage="data")
    await channels.publish(request)
    await channels.settle()

    (delivered,) = sink.messages()
    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, InvoiceDispatched), "router must not fall back for recipients already served"
    assert [(m.recipient, m.message_id) for m in outcome.messages] == [
        (delivered["rcpt_tos"][0], delivered["message_id"])]

    # The refusal is final: the same dispatch delivered again (a resent event) tries nobody again.
    await channels.publish(request.model_copy(update={"event_id": uuid.uuid4()}))
    await channels.settle()
    assert len(sink.messages()) == 1
    async with channels.host.ctx.sessions() as session:
        states = sorted((await session.scalars(select(Send.state).where(Send.dispatch_id == request.dispatch_id))).all())
    assert states == ["failed", "sent"]


async def test_a_temporary_refusal_is_retried_later_without_resending_to_the_others(start_channels, sink,
                                                                                     make_dispatch, eventually):
    channels = await start_channels(**QUICK_RETRIES)
    request = make_dispatch()
    sink.reject_next(1, 451)
    await channels.publish(request)
    await channels.settle()

    (outcome,) = await eventually(channels.outcomes, what="the outcome, once the put-off recipient is sent")
    received = sink.messages()
    assert sorted(m["rcpt_tos"][0] for m in received) == ["compta@buyer.example", "jeanne@buyer.example"]
    assert isinstance(outcome, InvoiceDispatched)
    assert {m.message_id for m in outcome.messages} == {m["message_id"] for m in received}
    rows = await ledger(channels, request.dispatch_id)
    assert sorted(r.attempts for r in rows.values()) == [1, 2], "only the refused recipient was tried again"
    assert channels.host.consumer_of(DispatchRequested).dead_lettered == 0


async def test_an_unreachable_relay_puts_the_dispatch_off_until_it_is_back(start_channels, sink, make_dispatch,
                                                                         eventually):
    await sink.stop()  # nothing listens on its port for now
    channels = await start_channels(**{**QUICK_RETRIES, "smtp_retry_first_seconds": 0.5})
    request = make_dispatch()
    await channels.publish(request)
    await channels.settle()
    rows = await ledger(channels, request.dispatch_id)
    assert {r.state for r in rows.values()} == {"sending"}
    assert all(r.next_attempt_at is not None and "unreachable" in r.last_error for r in rows.values())
    assert await channels.outcomes() == [], "neither dispatched nor failed while the relay is away"

    await sink.start()  # back on the same port
    (outcome,) = await eventually(channels.outcomes, what="the outcome once the relay is back")
    assert isinstance(outcome, InvoiceDispatched) and len(outcome.messages) == 2
    assert len(sink.messages()) == 2
    assert channels.host.consumer_of(DispatchRequested).dead_lettered == 0


async def test_a_channel_without_adapter_fails_permanently(channels, sink, make_dispatch):
    request = make_dispatch(channel="fax", fallback_channels=["email_link"])
    await channels.publish(request)
    await channels.settle()

    assert sink.messages() == []
    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, DispatchFailed)
    assert (outcome.reason, outcome.permanent, outcome.fallback_channels, outcome.channel) == (
        "no adapter for channel fax", True, ["email_link"], "fax")


async def test_email_attachment_without_a_pdf_sends_the_link_email(channels, sink, make_dispatch):
    request = make_dispatch(channel="email_attachment", invoice={"has_pdf": True},
                            recipients=[Recipient(email="compta@buyer.example")])
    await channels.publish(request)
    await channels.settle()

    (message,) = sink.messages()
    detail = sink.message(message["id"])
    assert detail["attachments"] == [], "no ingest reader token configured: the PDF is not obtainable"
    assert LINK.search(detail["text"])
    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, InvoiceDispatched) and outcome.channel == "email_attachment"

    async with httpx.AsyncClient(base_url=channels.host.url) as client:
        answer = await client.get("/v1/channels")
    assert answer.status_code == 200
    names = [channel["name"] for channel in answer.json()["channels"]]
    assert names == sorted(names) and {"email_attachment", "email_link"} <= set(names)

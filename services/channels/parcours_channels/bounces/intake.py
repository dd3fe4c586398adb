"""From a received bounce to DeliveryBounced: find the message it is about, note it in the
ledger, publish through the outbox. Anything we cannot tie to a message of ours with
confidence is dropped with a log line (answering with an error would only make the sender
retry, or bounce the bounce)."""

from __future__ import annotations

import asyncio
import logging

from parcours_channels.domain.dsn import BounceReport, RecipientFailure, parse_bounce
from parcours_channels.domain.verp import InvalidVerp, is_verp_shaped, read_verp_address, recipient_digest
from parcours_channels.domain.wording import recipient_key
from parcours_channels.store.sends import Send, record_bounce, send_with_message_id, sends_of_dispatch
from parcours_contracts import DeliveryBounced
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)


async def take_bounce(*, ctx: ServiceContext, rcpt_tos: list[str], raw: bytes) -> list[DeliveryBounced]:
    """Record the bounce `raw`, received for `rcpt_tos`, against the messages it names; returns the events published."""
    report = await asyncio.to_thread(parse_bounce, raw)  # the heuristics may take a while on a big message
    published: list[DeliveryBounced] = []
    async with UnitOfWork(ctx.sessions) as uow:
        for address in dict.fromkeys(a.lower() for a in rcpt_tos):
            found = await _bounced_message(uow, ctx, address, report)
            if found is None:
                continue
            send, failure = found
            if not await record_bounce(uow.session, send=send, permanent=failure.permanent, status=failure.status,
                                       diagnostic=failure.diagnostic):
                log.info("bounce for dispatch %s already recorded; dropped", send.dispatch_id,
                         extra={"tenant_id": send.tenant_id, "invoice_id": str(send.invoice_id)})
                continue
            event = _bounce_event(send, failure)
            uow.publish(event)
            published.append(event)
        await uow.commit()
    return published


async def _bounced_message(uow: UnitOfWork, ctx: ServiceContext, address: str,
                           report: BounceReport) -> tuple[Send, RecipientFailure] | None:
    """The ledger row the bounce received at `address` is about, and how it failed; None to drop it."""
    failure = report.worst()
    if is_verp_shaped(address):
        try:
            claims = read_verp_address(ctx.settings.bounce_secrets(), address, domain=ctx.settings.bounce_domain)
        except InvalidVerp as exc:
            log.warning("bounce to a return path we did not sign (%s); dropped", exc)
            return None
        rows = await sends_of_dispatch(uow.session, dispatch_id=claims.dispatch_id)
        send = next((r for r in rows if recipient_digest(r.recipient) == claims.recipient_digest), None)
        if send is None:
            log.warning("bounce for dispatch %s names no message we recorded; dropped", claims.dispatch_id)
            return None
        if failure is None:
            log.info("message to a return path of dispatch %s reports no failure (an auto-reply?); dropped",
                     claims.dispatch_id, extra={"tenant_id": send.tenant_id, "invoice_id": str(send.invoice_id)})
            return None
        return send, failure
    # Not a return path (a server bouncing to another address of the domain): the returned
    # Message-ID must name a message of ours, and the report must name its recipient.
    if report.original_message_id is None:
        log.warning("message to %s is neither for a return path nor about a known message; dropped", address)
        return None
    send = await send_with_message_id(uow.session, message_id=report.original_message_id)
    matching = [f for f in report.failures if send is not None and f.recipient
                and recipient_key(f.recipient) == send.recipient]
    if send is None or not matching:
        log.warning("bounce about Message-ID %s matches no message we sent; dropped", report.original_message_id)
        return None
    return send, next((f for f in matching if f.permanent), matching[0])


def _bounce_event(send: Send, failure: RecipientFailure) -> DeliveryBounced:
    return DeliveryBounced(
        tenant_id=send.tenant_id, invoice_id=send.invoice_id,
        correlation_id=send.correlation_id or f"dispatch-{send.dispatch_id}",  # rows sent before it was recorded
        dispatch_id=send.dispatch_id, channel=send.channel, purpose=send.purpose, recipient=send.recipient,
        message_id=send.message_id, permanent=failure.permanent, status=failure.status, diagnostic=failure.diagnostic,
    )

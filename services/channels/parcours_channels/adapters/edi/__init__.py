"""`edi`: the invoice as EDIFACT INVOIC D96A, sent over AS2 to the customer's trading partner:
signed, encrypted, with a signed MDN requested, synchronous or, for a partner in async mode,
posted later to `POST /v1/as2/mdn` (`mdn.py`). The MDN is the technical
acknowledgement (`delivery.acked`, status MDN) once its signature and MIC check out; an error
MDN is a permanent failure (router falls back); no trustworthy MDN after the last attempt, or
an async MDN not posted by `mdn_deadline_seconds`, leaves the invoice dispatched without proof
(submission failed/no-mdn, no event), for the tracker's not-received incident."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx

from parcours_channels.adapters import PartnerUnavailable
from parcours_channels.adapters.edi.as2 import As2Unanswered, TransientAnswer, build_message, send
from parcours_channels.domain.edi_profiles import EdiSettings
from parcours_channels.adapters.edi.invoic import build_invoic
from parcours_channels.adapters.invoice_document import fetch_invoice
from parcours_channels.adapters.partner_once import Accepted, PartnerRefused, last_attempt, submit_once
from parcours_channels.domain.outcome import DeliveryResult
from parcours_channels.store.partner_submissions import ACKNOWLEDGED, FAILED, PartnerSubmission
from parcours_contracts import DeliveryAcked, DispatchRequested
from parcours_runtime.service import ServiceContext

CHANNEL = "edi"
ACK_STATUS = "MDN"  # the tracker reads it as technical receipt (delivered)
AWAITING_MDN = "awaiting-mdn"
NO_MDN = "no-mdn"  # no trustworthy MDN came (sync: after the last attempt; async: by the deadline)


class EdiAdapter:
    name = CHANNEL

    async def deliver(self, request: DispatchRequested, ctx: ServiceContext) -> DeliveryResult:
        """Send the INVOIC once (the same AS2 Message-ID on every attempt); the MDN settles it."""
        settings: EdiSettings = ctx.settings.edi
        found = settings.partner_for(request.invoice.customer_ref)
        profile_name = found[0] if found else "-"

        async def submit(row: PartnerSubmission) -> Accepted:
            if not settings.configured:
                raise PartnerRefused("EDI over AS2 is not configured (PARCOURS_CHANNELS_EDI)")
            if found is None:
                raise PartnerRefused(f"no AS2 partner profile for customer {request.invoice.customer_ref}")
            partner = found[1]
            document = await fetch_invoice(ctx, request)
            interchange = build_invoic(document, dispatch_id=request.dispatch_id,
                                       sender=(settings.interchange_id, settings.interchange_qualifier),
                                       recipient=(partner.interchange_id, partner.interchange_qualifier))
            built = await asyncio.to_thread(build_message, settings, partner, interchange.encode(),
                                            dispatch_id=request.dispatch_id, filename=f"{request.dispatch_id}.edi")
            final = last_attempt(row, ctx)
            unacknowledged = Accepted(partner_ref=built.message_id, last_status=NO_MDN, state=FAILED,
                                      detail={"as2_message_id": built.message_id})
            try:
                verdict = await send(ctx.http, settings, partner, built)
            except As2Unanswered as exc:
                if final:
                    return unacknowledged  # it may have arrived: the tracker waits for proof, then opens an incident
                raise PartnerUnavailable(str(exc)) from None
            except (httpx.TransportError, TransientAnswer) as exc:  # not taken: partner_once fails it after the last attempt
                raise PartnerUnavailable(f"{partner.as2_id}: {str(exc) or type(exc).__name__}") from None
            if verdict is None:  # the partner took it and posts its signed MDN later (api_partners)
                return Accepted(partner_ref=built.message_id, last_status=AWAITING_MDN,
                                next_check_at=datetime.now(timezone.utc) + timedelta(seconds=settings.mdn_deadline_seconds),
                                detail={"as2_message_id": built.message_id, "mic": built.message.mic.decode(),
                                        "fallback_channels": list(request.fallback_channels)})
            if verdict.acked:
                ack = DeliveryAcked.following(request, channel=CHANNEL, ack_id=(verdict.mdn_id or built.message_id)[:200],
                                              status=ACK_STATUS, acked_at=datetime.now(timezone.utc))
                return Accepted(partner_ref=built.message_id, last_status=verdict.disposition[:64], state=ACKNOWLEDGED,
                                detail={"as2_message_id": built.message_id, "mdn_id": verdict.mdn_id}, events=(ack,))
            if not verdict.verified:  # an answer we cannot trust proves nothing
                if final:
                    return unacknowledged
                raise PartnerUnavailable(f"{partner.as2_id}: untrusted MDN ({verdict.detail})")
            raise PartnerRefused(f"{partner.as2_id} MDN {verdict.disposition}: {verdict.detail or 'no detail'}")

        return await submit_once(request, ctx, partner=profile_name, submit=submit)

    def background_jobs(self, ctx: ServiceContext) -> list:
        from parcours_channels.adapters.edi.mdn import MdnDeadline

        settings: EdiSettings = ctx.settings.edi
        return [MdnDeadline(ctx)] if any(p.mdn_mode == "async" for p in settings.partners.values()) else []

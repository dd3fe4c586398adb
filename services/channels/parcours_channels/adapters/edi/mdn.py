"""Asynchronous MDNs: a partner in async mode posts its signed MDN to `POST /v1/as2/mdn` after
taking our message. The MDN names the Message-ID it answers, which is the submission's
partner_ref; it is trusted only when signed by that submission's partner and its MIC is the one
we computed when signing. processed ⇒ `delivery.acked` MDN; an error disposition ⇒ a permanent
`dispatch.failed` (router falls back). Each submission is settled once: a repeated MDN changes nothing.

An MDN not posted by the partner's deadline (`mdn_deadline_seconds`) leaves the submission failed/no-mdn
(`MdnDeadline`, no event: the tracker's receipt window raises the not-received incident, as for a
sync MDN that never came). A trustworthy MDN arriving after that is still recorded: late proof is proof."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select

from parcours_channels.adapters.edi import ACK_STATUS, AWAITING_MDN, CHANNEL, NO_MDN
from parcours_channels.adapters.edi.as2 import original_message_id, read_async_mdn
from parcours_channels.adapters.partner_once import acked_after, dispatch_recorded, failed_after
from parcours_channels.domain.edi_profiles import EdiSettings
from parcours_channels.store.partner_submissions import (
    ACKNOWLEDGED, FAILED, REJECTED, SUBMITTED, PartnerSubmission, due_submissions, record_outcome, submission_by_ref,
)
from parcours_runtime.periodic import PeriodicJob
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MdnOutcome:
    status: int  # the HTTP answer to the partner
    detail: str


async def record_async_mdn(ctx: ServiceContext, raw: bytes) -> MdnOutcome:
    """Check the MDN against what we sent and settle the submission it answers."""
    settings: EdiSettings = ctx.settings.edi
    message_id = await asyncio.to_thread(original_message_id, raw)
    if message_id is None:
        return MdnOutcome(400, "Not an AS2 MDN (multipart/report with a disposition notification).")
    async with ctx.sessions() as session:
        row = await submission_by_ref(session, channel=CHANNEL, partner_ref=message_id)
    partner = settings.partners.get(row.partner) if row is not None else None
    mic = (row.detail or {}).get("mic") if row is not None else None
    if row is None or partner is None or not mic:
        return MdnOutcome(404, f"No message {message_id} awaits an MDN here.")
    if not await dispatch_recorded(ctx, row):
        return MdnOutcome(503, f"Message {message_id} is still being recorded here; send its MDN again shortly.")
    verdict = await asyncio.to_thread(read_async_mdn, raw, partner=partner, message_id=message_id, mic=mic)
    if not verdict.verified:
        return MdnOutcome(400, f"The MDN could not be trusted: {verdict.detail or verdict.disposition}")
    async with UnitOfWork(ctx.sessions) as uow:
        row = (await uow.session.scalars(select(PartnerSubmission).where(PartnerSubmission.dispatch_id == row.dispatch_id)
                                         .with_for_update().execution_options(populate_existing=True))).one()
        if row.state != SUBMITTED and (row.state, row.last_status) != (FAILED, NO_MDN):
            return MdnOutcome(200, "Already settled.")
        detail = {**(row.detail or {}), "mdn_id": verdict.mdn_id}
        if verdict.acked:
            uow.publish(acked_after(row, channel=CHANNEL, ack_id=verdict.mdn_id or message_id, status=ACK_STATUS,
                                    at=datetime.now(timezone.utc)))
            await record_outcome(uow.session, dispatch_id=row.dispatch_id, state=ACKNOWLEDGED,
                                 last_status=verdict.disposition[:64], detail=detail)
        else:
            reason = f"{partner.as2_id} MDN {verdict.disposition}: {verdict.detail or 'no detail'}"
            uow.publish(failed_after(row, channel=CHANNEL, reason=reason))
            await record_outcome(uow.session, dispatch_id=row.dispatch_id, state=REJECTED,
                                 last_status=verdict.disposition[:64], detail={**detail, "reason": reason})
        await uow.commit()
    return MdnOutcome(200, "Recorded.")


class MdnDeadline(PeriodicJob):
    """Fails the async submissions whose MDN is overdue (failed/no-mdn, no event); replicas skip the
    rows another pass holds."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        super().__init__(ctx.settings.edi.mdn_sweep_seconds)

    async def run_once(self) -> int:
        async with UnitOfWork(self.ctx.sessions) as uow:
            rows = await due_submissions(uow.session, channel=CHANNEL, now=datetime.now(timezone.utc))
            overdue = [row for row in rows if row.state == SUBMITTED and row.last_status == AWAITING_MDN]
            for row in rows:
                if row in overdue:
                    log.warning("edi message %s: no MDN by the deadline; left to the receipt window", row.partner_ref)
                    await record_outcome(uow.session, dispatch_id=row.dispatch_id, state=FAILED, last_status=NO_MDN)
                else:  # nothing to wait for
                    await record_outcome(uow.session, dispatch_id=row.dispatch_id, state=row.state,
                                         last_status=row.last_status, next_check_at=None)
            await uow.commit()
        return len(overdue)

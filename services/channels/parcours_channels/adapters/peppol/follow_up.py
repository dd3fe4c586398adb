"""What the access point learns about a transmission, by polling (a periodic pass over the due
submissions) or by its signed webhook (`record_events`, from the API): each event once.

No transport receipt by `receipt_deadline_seconds` ⇒ given up (state failed, no event: the
tracker's receipt window raises the not-received incident). Invoice Responses are waited for
`follow_days`, polled with a back-off from `first_check_seconds` to `longest_check_seconds`."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta, timezone
from uuid import UUID

from sqlalchemy import select

from parcours_channels.adapters import TransientDeliveryError
from parcours_channels.adapters.partner_once import acked_after, failed_after
from parcours_channels.adapters.peppol import CHANNEL, AccessPoint
from parcours_channels.domain.chorus_pro import Backoff
from parcours_channels.domain.peppol import RECEIPT_STATUS, ApEvent, PeppolSettings, apply_events
from parcours_channels.store.partner_submissions import (
    FAILED, SENDING, TERMINAL, PartnerSubmission, due_submissions, lease, record_outcome,
)
from parcours_runtime.periodic import PeriodicJob
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)
SIGNATURE_TOLERANCE_SECONDS = 300


class PeppolFollowUp(PeriodicJob):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.settings: PeppolSettings = ctx.settings.peppol
        super().__init__(self.settings.poll_seconds)
        self.backoff = Backoff(first=timedelta(seconds=self.settings.first_check_seconds),
                               longest=timedelta(seconds=self.settings.longest_check_seconds),
                               give_up_after=timedelta(days=self.settings.follow_days))
        self.lease = timedelta(seconds=2 * self.settings.timeout_seconds)

    async def run_once(self) -> int:
        """Poll every due transmission once (leased first, so replicas skip it); how many."""
        now = datetime.now(timezone.utc)
        async with UnitOfWork(self.ctx.sessions) as uow:
            rows = await due_submissions(uow.session, channel=CHANNEL, now=now)
            for row in rows:
                await lease(uow.session, dispatch_id=row.dispatch_id, until=now + self.lease)
            await uow.commit()
        access_point = AccessPoint(self.ctx.http, self.settings)
        for row in rows:
            try:
                events = await access_point.events(row.partner_ref or "")
            except TransientDeliveryError as exc:
                log.warning("peppol transmission %s: %s; polling again later", row.partner_ref, exc)
                events = []
            await record_events(self.ctx, row.dispatch_id, events, backoff=self.backoff,
                                receipt_deadline=timedelta(seconds=self.settings.receipt_deadline_seconds))
        return len(rows)


async def record_events(ctx: ServiceContext, dispatch_id: UUID, events: list[ApEvent], *, backoff: Backoff | None = None,
                        receipt_deadline: timedelta | None = None) -> None:
    """Apply what is new among `events` to the submission, with the events it raises, in one
    transaction (the row locked: a webhook and a poll never report an event twice)."""
    now = datetime.now(timezone.utc)
    async with UnitOfWork(ctx.sessions) as uow:
        row = (await uow.session.scalars(select(PartnerSubmission).where(PartnerSubmission.dispatch_id == dispatch_id)
                                         .with_for_update().execution_options(populate_existing=True))).first()
        if row is None or row.channel != CHANNEL or row.state == SENDING or row.state in TERMINAL:
            return
        detail = dict(row.detail or {})
        effects = apply_events(events, seen=list(detail.get("seen", [])), received=row.last_status not in (None, "accepted"))
        for ack_id, status, at in effects.acks:
            uow.publish(acked_after(row, channel=CHANNEL, ack_id=f"{row.partner_ref}:{ack_id}", status=status, at=at))
        if effects.failure is not None:
            uow.publish(failed_after(row, channel=CHANNEL, reason=effects.failure))
        state, last_status = effects.state or row.state, effects.last_status or row.last_status
        unreceived = last_status == "accepted"
        if backoff is not None and state not in TERMINAL:
            if unreceived and receipt_deadline is not None and now - row.created_at > receipt_deadline:
                state, last_status = FAILED, "no-receipt"
            elif backoff.expired(now, row.created_at):
                state = "done"
        next_check = backoff.next_check(now, row.checks) if backoff is not None else row.next_check_at
        await record_outcome(uow.session, dispatch_id=row.dispatch_id, state=state, last_status=last_status,
                             next_check_at=next_check, detail={**detail, "seen": effects.seen}, checked=backoff is not None)
        await uow.commit()


def signature_valid(secrets: list[str], *, header: str, body: bytes, now: float | None = None) -> bool:
    """`X-Peppol-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, within the tolerance,
    signed with one of the active `secrets` (two while rotating)."""
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((now or time.time()) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    given = parts.get("v1", "")
    signed = f"{timestamp}.".encode() + body
    return any(hmac.compare_digest(hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest(), given)
               for secret in secrets if secret)


__all__ = ["PeppolFollowUp", "RECEIPT_STATUS", "record_events", "signature_valid"]

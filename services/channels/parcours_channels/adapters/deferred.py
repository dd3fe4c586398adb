"""Deferred retries of recipients the transport put off (SMTP 4xx, relay away): greylisting wants
minutes, not the consumer's seconds of redelivery. A periodic pass leases the due ledger rows,
sends each again through its adapter (same Message-ID, same return path), and reschedules what
is put off again, doubling the wait (`smtp_retry_*`) until the attempts run out. Once no
recipient of a dispatch is scheduled any more, the pass reports the dispatch: InvoiceDispatched
if someone accepted it, else a permanent DispatchFailed, so that router falls back."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from uuid import UUID

from parcours_channels.adapters import RecipientRefused, TransientDeliveryError
from parcours_channels.adapters.registry import ADAPTERS
from parcours_channels.adapters.send_once import retry_schedule, send_ledger, settled_result, unique_recipients
from parcours_channels.domain.outcome import outcome_event
from parcours_channels.domain.wording import recipient_key
from parcours_channels.store.deferrals import (
    DeferredDispatch, deferred_dispatches, give_up, lease_due, reschedule, settle,
)
from parcours_channels.store.sends import Send
from parcours_contracts import DispatchRequested
from parcours_runtime.periodic import PeriodicJob
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)
BATCH = 200


class DeferredSends(PeriodicJob):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx.settings.smtp_retry_poll_seconds)
        self.ctx = ctx
        self.schedule = retry_schedule(ctx)
        # a pass's sends of a row end before (connect + a few commands, each within smtp_timeout)
        self.lease = timedelta(seconds=6 * ctx.settings.smtp_timeout)

    async def run_once(self) -> int:
        """Try every due recipient once; how many were tried. Rows are leased in a short transaction,
        sent outside any, and each dispatch's results recorded in its own."""
        now = datetime.now(timezone.utc)
        async with UnitOfWork(self.ctx.sessions) as uow:
            rows = await lease_due(uow.session, now=now, until=now + self.lease, limit=BATCH)
            deferrals = await deferred_dispatches(uow.session, {row.dispatch_id for row in rows})
            await uow.commit()
        by_dispatch: dict[UUID, list[Send]] = {}
        for row in rows:
            by_dispatch.setdefault(row.dispatch_id, []).append(row)
        await asyncio.gather(*(self._retry(deferrals.get(dispatch_id), dispatch_rows)
                               for dispatch_id, dispatch_rows in by_dispatch.items()))
        return len(rows)

    async def _retry(self, deferral: DeferredDispatch | None, rows: list[Send]) -> None:
        if deferral is None:  # a row scheduled without its request: nothing to send it with
            async with UnitOfWork(self.ctx.sessions) as uow:
                for row in rows:
                    await give_up(uow.session, row, error="deferred without its request")
                await uow.commit()
            return
        request = DispatchRequested.model_validate(deferral.request)
        outcomes = await self._send(request, rows)
        now = datetime.now(timezone.utc)
        async with UnitOfWork(self.ctx.sessions) as uow:
            for row in rows:
                outcome = outcomes[row.recipient]
                if isinstance(outcome, RecipientRefused):
                    await give_up(uow.session, row, error=str(outcome))
                elif isinstance(outcome, TransientDeliveryError):
                    attempts = row.attempts
                    at = self.schedule.next_attempt(now, attempts_made=attempts)
                    if at is None:
                        await give_up(uow.session, row, error=f"gave up after {attempts} attempt(s): {outcome}")
                    else:
                        await reschedule(uow.session, row, next_attempt_at=at, error=str(outcome))
                elif outcome is not None:  # our own trouble: the lease runs out and a later pass tries again
                    log.error("deferred send of dispatch %s failed: %r", row.dispatch_id, outcome)
            if (settled := await settle(uow.session, request.dispatch_id)) is not None:
                uow.publish(outcome_event(request, self._result(request, *settled)))
            await uow.commit()

    async def _send(self, request: DispatchRequested, rows: list[Send]) -> dict[str, BaseException | None]:
        """Each row's recipient sent again: None when accepted (recorded at once), else what was raised."""
        adapter = self.ctx.extras[ADAPTERS].get(request.channel)
        by_key = {recipient_key(r.email): r for r in request.recipients}
        try:
            if adapter is None or not hasattr(adapter, "sender"):
                raise RecipientRefused(f"no adapter for channel {request.channel} sends through the ledger")
            send_one = await adapter.sender(request, self.ctx)
        except (RecipientRefused, TransientDeliveryError) as exc:
            return {row.recipient: exc for row in rows}
        ledger = send_ledger(self.ctx)

        async def send(row: Send) -> None:
            recipient = by_key[row.recipient]
            await send_one(recipient, row.message_id,
                           lambda: ledger.record_accepted(request.tenant_id, request.dispatch_id, recipient.email))

        results = await asyncio.gather(*(send(row) for row in rows), return_exceptions=True)
        return {row.recipient: result for row, result in zip(rows, results)}

    @staticmethod
    def _result(request: DispatchRequested, deferral: DeferredDispatch, rows: list[Send]):
        by_key = {row.recipient: row for row in rows}
        recipients = [r for r in unique_recipients(request.recipients) if recipient_key(r.email) in by_key]
        return settled_result(recipients, {r.email: by_key[recipient_key(r.email)] for r in recipients},
                              sent_now=set(), refused=dict(deferral.refused))


def deferred_jobs(ctx: ServiceContext) -> list[DeferredSends]:
    return [DeferredSends(ctx)]

"""Following deposits on Chorus Pro: a periodic pass over the submissions whose check is due.

First the flux's integration report (integrated ⇒ `delivery.acked` DEPOSEE; refused ⇒
`dispatch.failed`, permanent, so router falls back), then the invoice's history, each new
status reported once as `delivery.acked` with its 2026 lifecycle name. Checks back off and
stop at a terminal status or after the configured time (the tracker's receipt window raises
the incident when no proof came)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from parcours_channels.adapters import TransientDeliveryError
from parcours_channels.adapters.chorus_pro.batches import BatchDeposits, is_batched
from parcours_channels.adapters.chorus_pro.client import ChorusProError
from parcours_channels.adapters.partner_once import acked_after, failed_after
from parcours_channels.domain.chorus_pro import CR_INTEGRATED, CR_REFUSED, HISTORY, HISTORY_TERMINAL, Backoff
from parcours_channels.store.partner_submissions import (
    ACKNOWLEDGED, DONE, FAILED, REJECTED, SUBMITTED, PartnerSubmission, due_submissions, lease, record_outcome,
)
from parcours_contracts import DeliveryAcked, DispatchFailed
from parcours_runtime.periodic import PeriodicJob
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

if TYPE_CHECKING:
    from parcours_channels.adapters.chorus_pro import ChorusProAdapter

log = logging.getLogger(__name__)
CHANNEL = "chorus_pro"


class _Step:
    """What checking one submission found: the events to publish and the row's new values."""

    def __init__(self) -> None:
        self.events: list = []
        self.outcome: dict = {}

    def publish(self, event) -> None:
        self.events.append(event)

    def record(self, **outcome) -> None:
        self.outcome = outcome


class ChorusProFollowUp(PeriodicJob):
    def __init__(self, ctx: ServiceContext, adapter: ChorusProAdapter) -> None:
        self.ctx = ctx
        self.adapter = adapter
        settings = adapter.client(ctx).settings
        super().__init__(settings.poll_seconds)
        self.backoff = Backoff(first=timedelta(seconds=settings.first_check_seconds),
                               longest=timedelta(seconds=settings.longest_check_seconds),
                               give_up_after=timedelta(days=settings.follow_days))
        self.integration_deadline = timedelta(hours=settings.integration_deadline_hours)
        self.lease = timedelta(seconds=4 * settings.timeout_seconds)  # a pass's calls for one row end before

    async def run_once(self) -> int:
        """Check every due submission once; how many were checked.

        The due rows are leased (their next check pushed past the calls' timeouts) in a short
        transaction, then each is checked and recorded in its own: no transaction stays open
        across partner calls, and another replica's pass skips the leased rows."""
        now = datetime.now(timezone.utc)
        async with UnitOfWork(self.ctx.sessions) as uow:
            rows = await due_submissions(uow.session, channel=CHANNEL, now=now)
            for row in rows:
                await lease(uow.session, dispatch_id=row.dispatch_id, until=now + self.lease)
            await uow.commit()
        if batched := [row for row in rows if is_batched(row)]:
            await BatchDeposits(self.ctx, self.adapter.client(self.ctx), lease=self.lease).run(batched, now, self._failed)
        for row in (row for row in rows if not is_batched(row)):
            step = _Step()
            try:
                await self._check(step, row, now)
            except TransientDeliveryError as exc:
                log.warning("chorus_pro flux %s: %s; checking again later", row.partner_ref, exc)
                step = _Step()
                step.record(state=row.state, last_status=row.last_status, next_check_at=self._next(row, now),
                            checked=True)
            async with UnitOfWork(self.ctx.sessions) as uow:
                for event in step.events:
                    uow.publish(event)
                await record_outcome(uow.session, dispatch_id=row.dispatch_id, **step.outcome)
                await uow.commit()
        return len(rows)

    def _next(self, row: PartnerSubmission, now: datetime) -> datetime:
        return self.backoff.next_check(now, row.checks)

    async def _check(self, step: _Step, row: PartnerSubmission, now: datetime) -> None:
        client = self.adapter.client(self.ctx)
        account = client.settings.account_for(row.tenant_id)
        if account is None:
            raise TransientDeliveryError(f"tenant {row.tenant_id} has no Chorus Pro technical account any more")
        detail = dict(row.detail)
        if detail.get("stage") == "report" and detail.get("invoice_id") is None:
            report = await client.report(account, flux=row.partner_ref or "", syntax=detail.get("syntax") or "")
            status = report.etatCourantDepotFlux or "IN_DEPOSE"
            if status in CR_REFUSED:
                errors = "; ".join(str(e.get("libelleErreurDP") or e.get("libelleErreur") or e)
                                   for e in [*report.listeErreurDP, *report.listeErreurTechnique])
                reason = f"Chorus Pro {status} for flux {row.partner_ref}: {errors or report.libelle}"
                step.publish(self._failed(row, reason))
                step.record(state=REJECTED, last_status=status, checked=True)
                return
            if status not in CR_INTEGRATED:
                expired = now - row.created_at > self.integration_deadline
                step.record(state=FAILED if expired else SUBMITTED,
                            last_status=status, next_check_at=self._next(row, now), checked=True)
                return
            step.publish(self._acked(row, "DEPOSEE", ack_id=f"{row.partner_ref}:{status}", at=now))
            try:
                found = await client.find_invoice(account, number=detail["number"])
            except ChorusProError:
                found = None
            detail.update(stage="history", invoice_id=found.idFacture if found else None)
            step.record(state=ACKNOWLEDGED, last_status=status,
                        next_check_at=self._next(row, now), detail=detail, checked=True)
            return
        if detail.get("invoice_id") is None:  # integrated, but not found yet among the supplier's invoices
            found = await client.find_invoice(account, number=detail["number"])
            if found is None:
                step.record(state=row.state,
                            last_status=row.last_status, next_check_at=self._next(row, now), checked=True)
                return
            detail["invoice_id"] = found.idFacture
        history = await client.history(account, invoice_id=int(detail["invoice_id"]))
        status = history.statutCourantCode or row.last_status
        if status != row.last_status and (lifecycle := HISTORY.get(status or "")) is not None:
            step.publish(self._acked(row, lifecycle.name, ack_id=f"{row.partner_ref}:{status}", at=now))
        if status in HISTORY_TERMINAL:
            state = REJECTED if HISTORY.get(status) is not None and HISTORY[status].name == "REJETEE" else DONE
        elif self.backoff.expired(now, row.created_at):
            state = DONE
        else:
            state = ACKNOWLEDGED
        step.record(state=state, last_status=status,
                    next_check_at=self._next(row, now), detail={**detail, "stage": "history"}, checked=True)

    @staticmethod
    def _acked(row: PartnerSubmission, status: str, *, ack_id: str, at: datetime) -> DeliveryAcked:
        return acked_after(row, channel=CHANNEL, ack_id=ack_id, status=status, at=at)

    @staticmethod
    def _failed(row: PartnerSubmission, reason: str) -> DispatchFailed:
        return failed_after(row, channel=CHANNEL, reason=reason)

"""The receipt sweep: a background job that, every tick, opens a `not_received` incident for each
invoice whose receipt timer is past its deadline on the service's clock.

Set-based: one query takes a batch of due timers (locked, SKIP LOCKED so replicas share the
work), and the transaction that opens the incidents marks the timers fired, so a timer fires
once even with several replicas. Timers live in the database: a restart loses none."""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from parcours_runtime.service import ServiceContext
from parcours_runtime.periodic import PeriodicJob
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain.incidents import Expectation, not_received
from parcours_tracker.store import incidents
from parcours_tracker.store.journeys import Tracking

log = logging.getLogger(__name__)


class OpenedIncident(BaseModel):
    tenant_id: str
    invoice_id: UUID
    incident_id: UUID
    channel: str


class SweepResult(BaseModel):
    """What one sweep opened, at the clock's instant it ran for."""

    now: datetime
    opened: list[OpenedIncident] = Field(default_factory=list)


class ReceiptSweep(PeriodicJob):
    """BackgroundJob: one pass every `sweep_tick_seconds`; `run_once()` is also the admin route's entry."""

    def __init__(self, ctx: ServiceContext):
        super().__init__(ctx.settings.sweep_tick_seconds)
        self._ctx = ctx

    @property
    def tracking(self) -> Tracking:
        return self._ctx.extras["tracking"]

    async def run_once(self, *, skip_locked: bool = True) -> SweepResult:
        """Fire every timer due now, one transaction per batch. The periodic pass skips timers another
        transaction holds (a consumer re-projecting that invoice, another replica's sweep): the next pass
        takes them. A pass run on demand (`skip_locked=False`) waits for them, so that everything due at
        its instant is settled when it returns."""
        result = SweepResult(now=self.tracking.clock.now())
        while not self.stopping and await self._fire_batch(result, skip_locked=skip_locked):
            pass
        return result

    async def _fire_batch(self, result: SweepResult, *, skip_locked: bool) -> int:
        async with UnitOfWork(self._ctx.sessions) as uow:
            due = await incidents.due_timers(uow.session, now=result.now, limit=self._ctx.settings.sweep_batch_size,
                                             skip_locked=skip_locked)
            for timer, invoice in due:
                timer.fired_at = result.now
                expectation = Expectation(channel=timer.channel, dispatch_id=timer.dispatch_id,
                                          dispatched_at=timer.dispatched_at, expect_by=timer.expect_by,
                                          proof=timer.proof)
                opened = await incidents.open_incident(uow, invoice=invoice, draft=not_received(expectation, result.now),
                                                       now=result.now)
                if opened is not None:
                    result.opened.append(OpenedIncident(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id,
                                                        incident_id=opened.incident_id, channel=timer.channel))
            await uow.commit()
        return len(due)

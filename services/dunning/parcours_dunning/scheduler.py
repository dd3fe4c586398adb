"""The reminder scheduler: a background job that, every tick, decides the schedule steps
whose time has come on the service's clock and emits a ReminderDue for each one that fires.

Like handlers.py and api.py, it is a thin trigger: the store locks and loads, the domain
decides, the unit of work publishes through the outbox in the same transaction that marks
the step, so a step is emitted exactly once even with several replicas."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from parcours_runtime.service import ServiceContext
from parcours_runtime.periodic import PeriodicJob
from parcours_runtime.uow import UnitOfWork

from parcours_runtime.clock import Clock
from parcours_dunning.planning import Outgoing, decide_invoice, load
from parcours_dunning.reminders import send_reminders
from parcours_dunning.store.invoices import InvoiceKey, lock_invoices
from parcours_dunning.store.schedule import claim_due_invoices

log = logging.getLogger(__name__)


class StepDecision(BaseModel):
    """One step the scheduler decided."""

    tenant_id: str
    invoice_id: UUID
    step: str
    sequence: int
    state: Literal["emitted", "done", "skipped"]
    action: str
    reason: str
    event_id: UUID | None


class PassResult(BaseModel):
    """What one scheduler pass decided, at the clock's instant it ran for."""

    now: datetime
    emitted: list[StepDecision] = Field(default_factory=list)
    skipped: list[StepDecision] = Field(default_factory=list)


class ReminderScheduler(PeriodicJob):
    """BackgroundJob: one pass every `tick_seconds`; `run_once()` is also the admin route's and tests' entry."""

    def __init__(self, ctx: ServiceContext):
        super().__init__(ctx.settings.tick_seconds)
        self._ctx = ctx

    @property
    def clock(self) -> Clock:
        return self._ctx.extras["clock"]  # looked up each time: tests and the admin route may swap it

    async def run_once(self) -> PassResult:
        """Decide every pending step due now, one transaction per batch of invoices."""
        result = PassResult(now=self.clock.now())
        claims = _Claims()
        while not self.stopping:
            if not await self._decide_batch(result, claims):
                break
        return result

    async def _decide_batch(self, result: PassResult, claims: _Claims) -> int:
        batch: list[StepDecision] = []
        policy = self._ctx.extras["policy"]
        async with UnitOfWork(self._ctx.sessions) as uow:
            while True:
                started_at = claims.after
                keys, claims.after = await claim_due_invoices(uow.session, now=result.now, after=claims.after,
                                                              limit=self._ctx.settings.scheduler_batch_size)
                fresh = [key for key in keys if key not in claims.decided]  # a step left due waits for the next pass
                if fresh or not keys or claims.after == started_at:
                    break
            if not fresh:
                return 0
            claims.decided.update(fresh)
            invoices = sorted(await lock_invoices(uow.session, keys=fresh),  # locked by the claim: this loads them
                              key=lambda i: (i.due_date, i.tenant_id, i.invoice_id))  # oldest due first, as before
            outgoing: list[Outgoing] = []
            decisions = []
            for item in await load(uow.session, invoices):
                decided = await decide_invoice(uow.session, invoice=item.invoice, strategy=item.strategy,
                                               facts=item.facts, rows=item.rows, policy=policy, now=result.now,
                                               outgoing=outgoing)
                decisions.extend((item.invoice, row, d) for row, d in decided)
            await send_reminders(uow, outgoing, policy=policy, now=result.now)  # may group: event ids set after
            batch = [StepDecision(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, step=row.step,
                                  sequence=row.sequence, state=row.state, action=row.action,
                                  reason=row.reason or d.decision.reason, event_id=row.event_id)
                     for invoice, row, d in decisions]
            await uow.commit()
        for decision in batch:
            (result.skipped if decision.state == "skipped" else result.emitted).append(decision)
            log.info("reminder %s %s: %s", decision.step, decision.state, decision.reason,
                     extra={"tenant_id": decision.tenant_id, "invoice_id": decision.invoice_id})
        return len(invoices)


@dataclass
class _Claims:
    """Where a pass stands: the fire_at its next claim starts from, the invoices it decided."""

    after: datetime | None = None
    decided: set[InvoiceKey] = field(default_factory=set)


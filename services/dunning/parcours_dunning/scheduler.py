"""The reminder scheduler: a background job that, every tick, decides the schedule steps
whose time has come on the service's clock and emits a ReminderDue for each one that fires.

Like handlers.py and api.py, it is a thin trigger: the store locks and loads, the domain
decides, the unit of work publishes through the outbox in the same transaction that marks
the step, so a step is emitted exactly once even with several replicas."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from parcours_contracts import ReminderDue, ReminderInfo
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

from parcours_dunning.domain.clock import Clock
from parcours_dunning.domain.strategy import Fire, InvoiceFacts, Skip, decide, known_steps
from parcours_dunning.store.invoices import Invoice, facts_of
from parcours_dunning.store.schedule import ScheduledStep, due_steps_of, lock_invoices_with_due_steps

log = logging.getLogger(__name__)

# ReminderDue ids derive from the step, so one step is one event whoever decides it.
_REMINDER_NAMESPACE = uuid.UUID("7f0e4a53-3f4e-4a0e-9a55-2b8f5d1d0c11")


def reminder_event_id(*, tenant_id: str, invoice_id: UUID, strategy: str, step: str) -> UUID:
    return uuid.uuid5(_REMINDER_NAMESPACE, f"{tenant_id}/{invoice_id}/{strategy}/{step}")


class StepDecision(BaseModel):
    """One step the scheduler decided."""

    tenant_id: str
    invoice_id: UUID
    step: str
    sequence: int
    state: Literal["emitted", "skipped"]
    reason: str
    event_id: UUID | None


class PassResult(BaseModel):
    """What one scheduler pass decided, at the clock's instant it ran for."""

    now: datetime
    emitted: list[StepDecision] = Field(default_factory=list)
    skipped: list[StepDecision] = Field(default_factory=list)


class ReminderScheduler:
    """BackgroundJob: one pass every `tick_seconds`; `run_once()` is also the admin route's and tests' entry."""

    def __init__(self, ctx: ServiceContext):
        self._ctx = ctx
        self._stopping = asyncio.Event()
        self._loop_pass = asyncio.Lock()

    @property
    def clock(self) -> Clock:
        return self._ctx.extras["clock"]  # looked up each time: tests and the admin route may swap it

    async def run(self) -> None:
        while not self._stopping.is_set():
            async with self._loop_pass:
                try:
                    await self.run_once()
                except Exception:  # database away: the steps stay pending for the next tick
                    log.exception("reminder pass failed; retrying at the next tick")
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self._ctx.settings.tick_seconds)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Let the loop's batch in hand commit, then return; what is left stays pending."""
        self._stopping.set()
        async with self._loop_pass:
            pass

    async def run_once(self) -> PassResult:
        """Decide every pending step due now, one transaction per batch of invoices."""
        result = PassResult(now=self.clock.now())
        while not self._stopping.is_set():
            if not await self._decide_batch(result):
                break
        return result

    async def _decide_batch(self, result: PassResult) -> int:
        batch: list[StepDecision] = []
        async with UnitOfWork(self._ctx.sessions) as uow:
            invoices = await lock_invoices_with_due_steps(uow.session, now=result.now,
                                                          limit=self._ctx.settings.scheduler_batch_size)
            if not invoices:
                return 0
            keys = [invoice.key for invoice in invoices]
            steps = await due_steps_of(uow.session, keys=keys, now=result.now)
            facts = await facts_of(uow.session, invoices)
            for invoice in invoices:
                rows = [row for row in steps if (row.tenant_id, row.invoice_id) == invoice.key]
                batch.extend(self._decide_invoice(uow, invoice, rows, facts[invoice.key], result.now))
            await uow.commit()
        for decision in batch:
            (result.emitted if decision.state == "emitted" else result.skipped).append(decision)
            log.info("reminder %s %s: %s", decision.step, decision.state, decision.reason,
                     extra={"tenant_id": decision.tenant_id, "invoice_id": decision.invoice_id})
        return len(invoices)

    @staticmethod
    def _decide_invoice(uow: UnitOfWork, invoice: Invoice, rows: list[ScheduledStep], facts: InvoiceFacts,
                        now: datetime) -> list[StepDecision]:
        steps = known_steps(invoice.strategy, [row.step for row in rows])
        decisions = decide(steps, facts)
        out = []
        for row in rows:
            # A step its strategy no longer has must not wedge the scheduler: it is skipped.
            decision = decisions.get(row.step) or Skip(f"strategy {invoice.strategy!r} has no step {row.step!r}")
            row.decided_at, row.reason = now, decision.reason
            if isinstance(decision, Fire):
                row.state = "emitted"
                row.event_id = reminder_event_id(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id,
                                                 strategy=invoice.strategy, step=row.step)
                uow.publish(ReminderDue(
                    event_id=row.event_id, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id,
                    correlation_id=invoice.correlation_id, occurred_at=now,
                    reminder=ReminderInfo(strategy=invoice.strategy, step=row.step, sequence=row.sequence),
                    reason=decision.reason, invoice=invoice.invoice_summary(),
                ))
            else:
                assert isinstance(decision, Skip)
                row.state = "skipped"
            out.append(StepDecision(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, step=row.step,
                                    sequence=row.sequence, state=row.state, reason=decision.reason,
                                    event_id=row.event_id))
        return out

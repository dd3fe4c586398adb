"""The reminder schedule: one row per occurrence of each invoice's strategy steps, pending
(with the instant it fires), paused (held, or its anchor not known yet) until the scheduler
emits or skips it; and its read model for `GET /v1/invoices/{id}/reminders`."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, UniqueConstraint, select, text, tuple_
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_dunning.store.base import Base, pair_in
from parcours_dunning.store.invoices import Invoice, InvoiceKey
from parcours_dunning.store.journal import AuditRead, TaskRead

StepState = Literal["pending", "paused", "emitted", "done", "skipped"]
DECIDED = ("emitted", "done", "skipped")
CLAIM_WINDOW = 4  # due steps read per claim, in batches: room for invoices with several due steps and for locked ones


class ScheduledStep(Base):
    __tablename__ = "schedule"
    __table_args__ = (
        UniqueConstraint("tenant_id", "invoice_id", "step", name="uq_schedule_invoice_step"),
        # the scheduler's only question: which pending steps are due?
        Index("ix_schedule_pending_fire_at", "fire_at", postgresql_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    strategy: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16), server_default="reminder", doc="reminder | task | stop")
    fire_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), doc="None: its anchor is not known yet.")
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text, doc="Why it was decided so, or why it waits.")
    event_id: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), doc="The ReminderDue emitted, if any.")

    @property
    def decided(self) -> bool:
        return self.state in DECIDED


async def lock_invoices_with_due_steps(session: AsyncSession, *, now: datetime, limit: int) -> list[Invoice]:
    """Lock (FOR UPDATE SKIP LOCKED) up to `limit` invoices that have pending steps due at `now`.

    The invoice row is the lock, not each step row: all due steps of one invoice are then
    decided together by one replica, so two replicas never emit twice nor split an invoice;
    handlers and routes that change an invoice's facts take the same lock.

    Oldest due first, read from the partial index in fire_at order and cut at a few batches'
    worth: each claim costs the batch, not every due step (a pass over N due invoices stays
    linear). When the whole window is locked by other replicas the pass ends here; they hold
    the oldest steps and take the rest in their next claims."""
    window = (select(ScheduledStep.tenant_id, ScheduledStep.invoice_id)
              .where(ScheduledStep.state == "pending", ScheduledStep.fire_at <= now)
              .order_by(ScheduledStep.fire_at).limit(limit * CLAIM_WINDOW))
    return list((await session.scalars(
        select(Invoice).where(tuple_(Invoice.tenant_id, Invoice.invoice_id).in_(window))
        .order_by(Invoice.due_date, Invoice.tenant_id, Invoice.invoice_id)
        .limit(limit).with_for_update(skip_locked=True, of=Invoice)
        .execution_options(populate_existing=True)
    )).all())


_FIRING_ORDER = (ScheduledStep.fire_at.asc().nulls_last(), ScheduledStep.sequence, ScheduledStep.step)


async def steps_of(session: AsyncSession, *, tenant_id: str, invoice_id: UUID) -> list[ScheduledStep]:
    """An invoice's whole schedule, in firing order (waiting steps last)."""
    return (await steps_by_invoice(session, keys=[(tenant_id, invoice_id)]))[(tenant_id, invoice_id)]


async def steps_by_invoice(session: AsyncSession, *, keys: list[InvoiceKey]) -> dict[InvoiceKey, list[ScheduledStep]]:
    """The schedules of these invoices, each in firing order, in one statement."""
    out: dict[InvoiceKey, list[ScheduledStep]] = {key: [] for key in keys}
    if keys:
        for row in (await session.scalars(select(ScheduledStep).where(
                pair_in(ScheduledStep.tenant_id, ScheduledStep.invoice_id, keys)).order_by(*_FIRING_ORDER)
                .execution_options(populate_existing=True))).all():
            out[(row.tenant_id, row.invoice_id)].append(row)
    return out


class ReminderStepRead(BaseModel):
    step: str
    sequence: int
    action: str
    fire_at: datetime | None
    state: StepState
    decided_at: datetime | None
    reason: str | None
    event_id: UUID | None

    @classmethod
    def of(cls, row: ScheduledStep) -> "ReminderStepRead":
        return cls(step=row.step, sequence=row.sequence, action=row.action, fire_at=row.fire_at, state=row.state,
                   decided_at=row.decided_at, reason=row.reason, event_id=row.event_id)


class ReceiptRead(BaseModel):
    kind: str
    at: datetime


class ReminderPlanRead(BaseModel):
    """Body of `GET /v1/invoices/{id}/reminders`."""

    invoice_id: UUID
    number: str
    issue_date: date
    due_date: date
    amount: Decimal
    open_amount: Decimal
    currency: str
    strategy: str
    strategy_version: int
    status: str
    dispatched_at: datetime | None
    receipt: ReceiptRead | None
    steps: list[ReminderStepRead]
    tasks: list[TaskRead]
    audit: list[AuditRead]

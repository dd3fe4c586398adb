"""The reminder schedule: one row per planned step of each invoice, pending until the
scheduler emits or skips it, and its read model for `GET /v1/invoices/{id}/reminders`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, UniqueConstraint, select, text, tuple_
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_dunning.domain.strategy import PlannedStep
from parcours_dunning.store.base import Base
from parcours_dunning.store.invoices import Invoice, InvoiceKey, first_dispatched_at, first_receipts, get_invoice

StepState = Literal["pending", "emitted", "skipped"]


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
    fire_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), doc="The ReminderDue emitted, if any.")


async def add_plan(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, strategy: str,
                   planned: list[PlannedStep]) -> None:
    """Schedule an invoice's planned steps (a step already scheduled stays as it is)."""
    if not planned:
        return
    await session.execute(
        insert(ScheduledStep).values([
            {"tenant_id": tenant_id, "invoice_id": invoice_id, "strategy": strategy, "step": p.step,
             "sequence": p.sequence, "fire_at": p.fire_at, "state": "pending"}
            for p in planned
        ]).on_conflict_do_nothing(constraint="uq_schedule_invoice_step")
    )


async def lock_invoices_with_due_steps(session: AsyncSession, *, now: datetime, limit: int) -> list[Invoice]:
    """Lock (FOR UPDATE SKIP LOCKED) up to `limit` invoices that have pending steps due at `now`.

    The invoice row is the lock, not each step row: all due steps of one invoice are then
    decided together by one replica, so two replicas never emit twice nor split an invoice."""
    due = (select(ScheduledStep.tenant_id, ScheduledStep.invoice_id)
           .where(ScheduledStep.state == "pending", ScheduledStep.fire_at <= now))
    return list((await session.scalars(
        select(Invoice).where(tuple_(Invoice.tenant_id, Invoice.invoice_id).in_(due))
        .order_by(Invoice.due_date, Invoice.tenant_id, Invoice.invoice_id)
        .limit(limit).with_for_update(skip_locked=True, of=Invoice)
    )).all())


async def due_steps_of(session: AsyncSession, *, keys: list[InvoiceKey], now: datetime) -> list[ScheduledStep]:
    """Pending steps due at `now` of these (locked) invoices, re-read after the lock so a
    step another replica just decided is no longer pending here."""
    if not keys:
        return []
    return list((await session.scalars(
        select(ScheduledStep)
        .where(tuple_(ScheduledStep.tenant_id, ScheduledStep.invoice_id).in_(keys),
               ScheduledStep.state == "pending", ScheduledStep.fire_at <= now)
        .order_by(ScheduledStep.tenant_id, ScheduledStep.invoice_id, ScheduledStep.sequence)
    )).all())


async def steps_of(session: AsyncSession, *, tenant_id: str, invoice_id: UUID) -> list[ScheduledStep]:
    """An invoice's whole schedule, in firing order."""
    return list((await session.scalars(
        select(ScheduledStep)
        .where(ScheduledStep.tenant_id == tenant_id, ScheduledStep.invoice_id == invoice_id)
        .order_by(ScheduledStep.fire_at, ScheduledStep.sequence)
    )).all())


class ReminderStepRead(BaseModel):
    step: str
    sequence: int
    fire_at: datetime
    state: StepState
    decided_at: datetime | None
    reason: str | None
    event_id: UUID | None

    @classmethod
    def of(cls, row: ScheduledStep) -> "ReminderStepRead":
        return cls(step=row.step, sequence=row.sequence, fire_at=row.fire_at, state=row.state,
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
    strategy: str
    dispatched_at: datetime | None
    receipt: ReceiptRead | None
    steps: list[ReminderStepRead]


async def read_plan(session: AsyncSession, *, tenant_id: str, invoice_id: UUID) -> ReminderPlanRead | None:
    """The tenant's invoice's reminder plan with each step's state; None if the tenant has no such invoice."""
    invoice = await get_invoice(session, tenant_id=tenant_id, invoice_id=invoice_id)
    if invoice is None:
        return None
    receipt = (await first_receipts(session, keys=[invoice.key])).get(invoice.key)
    return ReminderPlanRead(
        invoice_id=invoice.invoice_id, number=invoice.number, issue_date=invoice.issue_date,
        due_date=invoice.due_date, strategy=invoice.strategy,
        dispatched_at=await first_dispatched_at(session, tenant_id=tenant_id, invoice_id=invoice_id),
        receipt=ReceiptRead(kind=receipt.kind, at=receipt.at) if receipt else None,
        steps=[ReminderStepRead.of(row) for row in await steps_of(session, tenant_id=tenant_id, invoice_id=invoice_id)],
    )

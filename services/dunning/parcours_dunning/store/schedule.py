"""The reminder schedule: one row per occurrence of each invoice's strategy steps, pending
(with the instant it fires), paused (held, or its anchor not known yet) until the scheduler
emits or skips it; and its read model for `GET /v1/invoices/{id}/reminders`."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger, DateTime, Identity, Index, Integer, String, Text, UniqueConstraint, bindparam, select, text, update,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_dunning.store.base import Base, among
from parcours_dunning.store.invoices import Invoice, InvoiceKey
from parcours_dunning.store.journal import AuditRead, TaskRead

StepState = Literal["pending", "paused", "emitted", "done", "skipped"]
DECIDED = ("emitted", "done", "skipped")


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


async def claim_due_invoices(session: AsyncSession, *, now: datetime, limit: int,
                             after: datetime | None = None) -> tuple[list[InvoiceKey], datetime | None]:
    """Lock (FOR UPDATE SKIP LOCKED) up to `limit` invoices that have pending steps due at `now`,
    in the order their steps fell due, from `after` on; their keys, and the `after` of the next claim.

    The invoice row is the lock, not each step row: all due steps of one invoice are then
    decided together by one replica, so two replicas never emit twice nor split an invoice;
    handlers and routes that change an invoice's facts take the same lock.

    One statement walks the partial index of due steps in fire_at order and stops at `limit`
    invoices it could lock, passing over those other replicas hold (they decide them). Each
    claim of a pass starts where the previous one stopped, so a pass reads each due step about
    once, keys only: steps decided earlier in the pass are not walked again (before their
    transaction is vacuumed away their index entries would otherwise be read at every claim).
    Steps that fall due behind the cursor during a pass, and invoices passed over because a
    handler held them at that moment, are the next pass's."""
    step = ScheduledStep
    query = (select(step.tenant_id, step.invoice_id, step.fire_at)
             .join(Invoice, (Invoice.tenant_id == step.tenant_id) & (Invoice.invoice_id == step.invoice_id))
             .where(step.state == "pending", step.fire_at <= now)
             .order_by(step.fire_at).limit(limit).with_for_update(of=Invoice, skip_locked=True))
    if after is not None:
        query = query.where(step.fire_at >= after)
    rows = (await session.execute(query)).all()
    keys = list(dict.fromkeys((tenant_id, invoice_id) for tenant_id, invoice_id, _ in rows))  # several due steps
    return keys, rows[-1].fire_at if rows else after


_FIRING_ORDER = (ScheduledStep.fire_at.asc().nulls_last(), ScheduledStep.sequence, ScheduledStep.step)


async def steps_of(session: AsyncSession, *, tenant_id: str, invoice_id: UUID) -> list[ScheduledStep]:
    """An invoice's whole schedule, in firing order (waiting steps last)."""
    return (await steps_by_invoice(session, keys=[(tenant_id, invoice_id)]))[(tenant_id, invoice_id)]


_STEP_COLUMNS = ("tenant_id", "invoice_id", "strategy", "step", "sequence", "action", "fire_at", "state",
                 "decided_at", "reason", "event_id")


class PlainStep:
    """A schedule row as plain values, for re-planning outside the ORM unit of work: building,
    tracking and flushing ORM objects was a fifth of dunning's CPU, for rows that `place` reads
    and changes in a few fields. `id` None: a new row, for `add_steps`; else `save_steps` writes
    it back if `place` changed it."""

    __slots__ = ("id", *_STEP_COLUMNS, "_loaded")

    def __init__(self, id: int | None = None, **values):
        self.id = id
        for column in _STEP_COLUMNS:
            setattr(self, column, values.get(column))
        self._loaded = self._changeable()

    @property
    def decided(self) -> bool:
        return self.state in DECIDED

    def _changeable(self) -> tuple:
        return (self.state, self.fire_at, self.reason, self.decided_at, self.event_id)

    @property
    def changed(self) -> bool:
        return self._changeable() != self._loaded


_SAVE = (update(ScheduledStep.__table__).where(ScheduledStep.__table__.c.id == bindparam("b_id"))
         .values(state=bindparam("b_state"), fire_at=bindparam("b_fire_at"), reason=bindparam("b_reason"),
                 decided_at=bindparam("b_decided_at"), event_id=bindparam("b_event_id")))


async def save_steps(session: AsyncSession, rows: list[PlainStep]) -> None:
    """Write back the loaded rows that changed, in one executemany."""
    changed = [dict(b_id=row.id, b_state=row.state, b_fire_at=row.fire_at, b_reason=row.reason,
                    b_decided_at=row.decided_at, b_event_id=row.event_id)
               for row in rows if row.id is not None and row.changed]
    if changed:
        await session.execute(_SAVE, changed)


async def add_steps(session: AsyncSession, rows: list[ScheduledStep] | list[PlainStep]) -> None:
    """Insert these new (transient) rows in one executemany, their values as they are now."""
    if rows:
        await session.execute(ScheduledStep.__table__.insert(),
                              [{column: getattr(row, column) for column in _STEP_COLUMNS} for row in rows])


async def steps_by_invoice(session: AsyncSession, *, keys: list[InvoiceKey],
                           plain: bool = False) -> dict[InvoiceKey, list[ScheduledStep]] | dict[InvoiceKey, list[PlainStep]]:
    """The schedules of these invoices, each in firing order, in one statement (`plain`: as PlainSteps)."""
    out: dict = {key: [] for key in keys}
    if keys and plain:
        table = ScheduledStep.__table__
        # table columns, not ORM attributes: a Core result, not the ORM's row processing; tuples zipped
        # with names: a RowMapping builds its key view per row
        names = ("id", *_STEP_COLUMNS)
        for values in (await session.execute(select(*(table.c[name] for name in names)).where(
                among(table.c.tenant_id, table.c.invoice_id, keys)).order_by(
                table.c.fire_at.asc().nulls_last(), table.c.sequence, table.c.step))):
            step = PlainStep(**dict(zip(names, values)))
            if (found := out.get((step.tenant_id, step.invoice_id))) is not None:
                found.append(step)
    elif keys:
        for row in (await session.scalars(select(ScheduledStep).where(
                among(ScheduledStep.tenant_id, ScheduledStep.invoice_id, keys)).order_by(*_FIRING_ORDER)
                .execution_options(populate_existing=True))).all():
            if (found := out.get((row.tenant_id, row.invoice_id))) is not None:
                found.append(row)
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

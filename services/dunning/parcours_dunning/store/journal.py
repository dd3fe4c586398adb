"""What dunning did and what it asks people to do: the audit log of every decision per
invoice, and the tasks (call, letter, escalate, formal notice, review) it opened."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import BigInteger, Date, DateTime, Identity, Index, String, Text, UniqueConstraint, select
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_dunning.store.base import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_invoice", "tenant_id", "invoice_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), doc="The service clock's instant of the decision.")
    kind: Mapped[str] = mapped_column(String(16), doc="planned | sent | task | stopped | skipped | paused | resumed | rescheduled")
    step: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("tenant_id", "invoice_id", "source", name="uq_tasks_invoice_source"),
                      Index("ix_tasks_open", "tenant_id", "due"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(16), doc="call | letter | escalate | formal_notice | review")
    due: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), server_default="open")
    source: Mapped[str] = mapped_column(String(128), doc="The step or event that opened it (one task per source).")
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def audit(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, at: datetime, kind: str, detail: str,
          step: str | None = None) -> None:
    session.add(AuditEntry(**audit_entry(tenant_id=tenant_id, invoice_id=invoice_id, at=at, kind=kind, detail=detail,
                                         step=step)))


def audit_entry(*, tenant_id: str, invoice_id: UUID, at: datetime, kind: str, detail: str,
                step: str | None = None) -> dict:
    """An audit log row's values, for `add_audit_entries`."""
    return dict(tenant_id=tenant_id, invoice_id=invoice_id, at=at, kind=kind, step=step, detail=detail)


async def add_audit_entries(session: AsyncSession, entries: list[dict]) -> None:
    """Append these rows in one executemany (no ORM objects: nothing reads them back here)."""
    if entries:
        await session.execute(insert(AuditEntry.__table__), entries)


async def open_task(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, kind: str, due: date, source: str,
                    reason: str, at: datetime) -> bool:
    """Open a task once per (invoice, source); False if that source already opened one."""
    inserted = await session.execute(insert(Task).values(
        tenant_id=tenant_id, invoice_id=invoice_id, kind=kind, due=due, source=source, reason=reason, created_at=at,
    ).on_conflict_do_nothing(constraint="uq_tasks_invoice_source").returning(Task.id))
    return inserted.first() is not None


class TaskRead(BaseModel):
    id: int
    invoice_id: UUID
    kind: str
    due: date
    state: str
    source: str
    reason: str

    @classmethod
    def of(cls, row: Task) -> "TaskRead":
        return cls(id=row.id, invoice_id=row.invoice_id, kind=row.kind, due=row.due, state=row.state,
                   source=row.source, reason=row.reason)


class AuditRead(BaseModel):
    at: datetime
    kind: str
    step: str | None
    detail: str


async def tasks_of(session: AsyncSession, *, tenant_id: str, invoice_id: UUID | None = None,
                   state: str | None = None) -> list[Task]:
    query = select(Task).where(Task.tenant_id == tenant_id).order_by(Task.due, Task.id)
    if invoice_id is not None:
        query = query.where(Task.invoice_id == invoice_id)
    if state is not None:
        query = query.where(Task.state == state)
    return list((await session.scalars(query.limit(1000))).all())


async def audit_of(session: AsyncSession, *, tenant_id: str, invoice_id: UUID) -> list[AuditEntry]:
    return list((await session.scalars(select(AuditEntry).where(
        AuditEntry.tenant_id == tenant_id, AuditEntry.invoice_id == invoice_id).order_by(AuditEntry.id))).all())

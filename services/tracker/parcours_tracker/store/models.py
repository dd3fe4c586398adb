"""The tracker's tables. Every one carries tenant_id and every query filters on it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class JournalEntry(Base):
    """Immutable: one row per event ever learned about an invoice (the event id is unique)."""

    __tablename__ = "journal"
    __table_args__ = (Index("journal_by_invoice", "tenant_id", "invoice_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Invoice(Base):
    """Projection of the journal: recomputed from all of an invoice's entries on every new one."""

    __tablename__ = "invoices"
    __table_args__ = (
        Index("invoices_by_tenant", "tenant_id", "seq"),
        Index("invoices_by_status", "tenant_id", "status", "seq"),
        Index("invoices_by_customer", "tenant_id", "customer_ref", "seq"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True, comment="Keyset pagination order.")
    correlation_id: Mapped[str] = mapped_column(String(128))
    number: Mapped[str | None] = mapped_column(String(64))
    customer_ref: Mapped[str | None] = mapped_column(String)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(32))
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    viewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Click(Base):
    """A GET of a tracked link (HEAD requests, from mail scanners, are not clicks)."""

    __tablename__ = "clicks"
    __table_args__ = (Index("clicks_by_invoice", "tenant_id", "invoice_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    dispatch_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    recipient: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    clicked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Ack(Base):
    """A partner ack delivery, keyed by the partner's own id: a replay finds its first delivery here."""

    __tablename__ = "acks"
    __table_args__ = (Index("acks_by_invoice", "tenant_id", "invoice_id"),)

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    ack_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    fingerprint: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

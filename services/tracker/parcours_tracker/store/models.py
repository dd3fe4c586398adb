"""The tracker's tables. Every one carries tenant_id and every query filters on it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, Identity, Index, Numeric, SmallInteger, String, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from parcours_tracker.domain.journal import OPENED, OPENED_BY_MACHINE


class Base(DeclarativeBase):
    pass


# Link opens in the journal, as a literal: a query repeats it as is, so that PostgreSQL matches the partial index
# in any plan (a bound parameter could not be proved to imply it in a generic plan).
OPENS_PREDICATE = f"kind IN ('{OPENED}', '{OPENED_BY_MACHINE}')"


class JournalEntry(Base):
    """Immutable: one row per event ever learned about an invoice (the event id is unique)."""

    __tablename__ = "journal"
    __table_args__ = (
        Index("journal_by_invoice", "tenant_id", "invoice_id", "occurred_at"),
        # Link opens change nothing on their invoice (no stamp on its row, whose update would touch every index of
        # invoices on each click): the `since` filter finds them here, by when they were learned.
        Index("journal_opens_by_time", "tenant_id", "recorded_at", postgresql_where=text(OPENS_PREDICATE)),
    )

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
        Index("invoices_by_number_key", "tenant_id", "number_key"),
        Index("invoices_by_update", "tenant_id", "updated_at"),
        Index("invoices_by_ack", "acked_at", postgresql_where=text("acked_at IS NOT NULL")),  # time-to-ack metric
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True, comment="Keyset pagination order.")
    correlation_id: Mapped[str] = mapped_column(String(128))
    number: Mapped[str | None] = mapped_column(String(64))
    number_key: Mapped[str | None] = mapped_column(
        String(64), comment="The number in upper case without separators, as bank statements quote it.")
    customer_ref: Mapped[str | None] = mapped_column(String)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(32))
    code: Mapped[int | None] = mapped_column(SmallInteger, comment="2026 lifecycle code of the status, if it has one.")
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    viewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Click(Base):
    """A person opened the invoice: the interstitial's button was pressed (its nonce is single-use).
    GETs of the link only reach the journal (opened / opened_by_machine)."""

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
    nonce: Mapped[str | None] = mapped_column(String(128), unique=True)
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


class Payment(Base):
    """A payment the ERP reported, idempotent by the tenant's payment id."""

    __tablename__ = "payments"
    __table_args__ = (Index("payments_by_invoice", "tenant_id", "invoice_id"),
                      Index("payments_by_confirming_line", "tenant_id", "confirmed_by", unique=True,
                            postgresql_where=text("confirmed_by IS NOT NULL")))

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), comment="transmitted | received")
    reference: Mapped[str | None] = mapped_column(String(200))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, comment="The journal entry (and PaymentRecorded) of its last change.")
    confirmed_by: Mapped[str | None] = mapped_column(
        String(128), comment="The bank statement line that confirmed it (a transmitted payment).")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReceiptTimer(Base):
    """The proof of receipt an invoice's latest dispatch owes, and until when. Stored, so timers
    survive restarts; the sweep reads the due ones set-based (partial index on expect_by)."""

    __tablename__ = "receipt_timers"
    __table_args__ = (Index("receipt_timers_due", "expect_by", postgresql_where=text("fired_at IS NULL")),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    dispatch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    dispatched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    proof: Mapped[str] = mapped_column(String(32))
    expect_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Incident(Base):
    """Something stands between an invoice and its customer. At most one open per invoice and kind."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("incidents_one_open", "tenant_id", "invoice_id", "kind", unique=True,
              postgresql_where=text("status = 'open'")),
        Index("incidents_by_tenant", "tenant_id", "seq"),
        Index("incidents_by_invoice", "tenant_id", "invoice_id"),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True, comment="Keyset pagination order.")
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), comment="open | resolved")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    suggested_action: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(String(2000))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

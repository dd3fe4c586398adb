"""Tables of ingest's database. Every row carries tenant_id and every query filters on it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, DateTime, ForeignKeyConstraint, Integer, LargeBinary, Numeric, SmallInteger, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TenantRow(Base):
    __tablename__ = "tenants"

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InvoiceRow(Base):
    """One accepted invoice: a few columns to query on, plus the full document as received."""

    __tablename__ = "invoices"
    # one invoice per tenant, number, seller and issue year (domain/duplicates.py); led by the number: lookups by it
    __table_args__ = (UniqueConstraint("tenant_id", "number", "seller_key", "issue_year", name="uq_invoices_duplicate_key"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    number: Mapped[str] = mapped_column(String(64))
    issue_date: Mapped[date] = mapped_column(Date)
    issue_year: Mapped[int] = mapped_column(SmallInteger)
    seller_key: Mapped[str] = mapped_column(String(220))
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    customer_ref: Mapped[str] = mapped_column(String(64))
    total_incl_tax: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    document: Mapped[dict] = mapped_column(JSONB)
    has_pdf: Mapped[bool] = mapped_column(default=False)
    # how the invoice came in: json, ubl, cii (an XML body) or factur-x (a PDF embedding CII)
    source_format: Mapped[str] = mapped_column(String(16), server_default="json")
    correlation_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InvoicePdfRow(Base):
    """The invoice's PDF: its SHA-256 in the tenant's blob store (`content` only for PDFs received before
    the blob store kept them)."""

    __tablename__ = "invoice_pdfs"
    __table_args__ = (ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),)

    invoice_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63))
    sha256: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)


class IdempotencyKeyRow(Base):
    """The response given to the first request with a tenant's Idempotency-Key, replayed to its retries."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    # json, not jsonb: jsonb reorders keys, and a replay must be byte for byte the first response
    response_json: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InvoiceSourceRow(Base):
    """The document the invoice was read from (UBL or CII XML), kept byte for byte as received: in the tenant's
    blob store under `sha256` (`content` only for documents received before the blob store kept them)."""

    __tablename__ = "invoice_sources"
    __table_args__ = (ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),)

    invoice_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63))
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)

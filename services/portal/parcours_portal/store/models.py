"""The portal's tables: console users, and a read model of the events (invoices, their timeline,
incidents, customers, recipients) plus the recipients' attachments. Every row carries tenant_id
and every query filters on it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, Identity, Index, Integer, LargeBinary, Numeric, String, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    """A console user of one tenant (local account; argon2 hash)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, comment="lower-case; the sign-in name")
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Invoice(Base):
    """What the events say about one invoice now."""

    __tablename__ = "invoices"
    # tenant_id does not lead these: generic plans of primary-key lookups on a table not yet analysed
    # took an index on tenant_id alone and read every invoice of the tenant per lookup
    __table_args__ = (Index("invoices_by_customer", "customer_ref", "tenant_id"),
                      Index("invoices_by_due", "due_date", "tenant_id"))

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    correlation_id: Mapped[str] = mapped_column(String(128))
    number: Mapped[str | None] = mapped_column(String(64))
    customer_ref: Mapped[str | None] = mapped_column(String(64))
    buyer_name: Mapped[str | None] = mapped_column(String(200))
    seller_name: Mapped[str | None] = mapped_column(String(200))
    issue_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    currency: Mapped[str | None] = mapped_column(String(3))
    total: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    open_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    has_pdf: Mapped[bool] = mapped_column(default=False)
    source_format: Mapped[str | None] = mapped_column(String(16), comment="json, ubl, cii, factur-x (ingest keeps the XML)")
    status: Mapped[str] = mapped_column(String(64), default="pending")
    code: Mapped[int | None] = mapped_column(Integer)
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str | None] = mapped_column(String(64))
    open_incidents: Mapped[int] = mapped_column(Integer, default=0)
    promised_on: Mapped[date | None] = mapped_column(Date)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    last_reminder: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TimelineEntry(Base):
    """One event about an invoice, with the evidence it carried (event id unique: redeliveries are no-ops)."""

    __tablename__ = "timeline"
    __table_args__ = (Index("timeline_by_invoice", "tenant_id", "invoice_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("incidents_by_status", "status", "tenant_id"),
                      Index("incidents_by_invoice", "invoice_id", "tenant_id"))

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    suggested_action: Mapped[str | None] = mapped_column(String(64))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(2000))
    requested_by: Mapped[str | None] = mapped_column(String(320))


class Customer(Base):
    __tablename__ = "customers"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    group: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(2))


class Attachment(Base):
    """A file a recipient joined to a dispute; the event carries only its hash."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(320))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Recipient(Base):
    """An address the tenant sends a customer's invoices to (from DispatchRequested): who may ask for a sign-in link."""

    __tablename__ = "recipients"
    __table_args__ = (Index("recipients_by_email", "email"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True, comment="lower-case")


class SignInLink(Base):
    """A magic sign-in link sent by e-mail: single use, short-lived; only the token's hash is kept."""

    __tablename__ = "sign_in_links"
    __table_args__ = (Index("sign_in_links_by_email", "email", "created_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_ref: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

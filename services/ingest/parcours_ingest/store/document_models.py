"""Tables of document preparation: the tenants' CGV (terms and conditions) per customer group, the
annexes and supporting files of an invoice, and what ingest knows of each customer (group, language)
from the router's customer.changed events, and the documents prepared from all that (cached). Bytes
live in the blob store; rows hold their SHA-256."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, Integer, LargeBinary, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from parcours_ingest.store.models import Base

DEFAULT_GROUP = ""  # the tenant's CGV for customers of no group with CGV of its own


class TenantCgvRow(Base):
    """A tenant's CGV pages (a PDF) for one customer group, inserted after page `after_page` of each
    rendered invoice (0: before it; NULL: after its last page)."""

    __tablename__ = "tenant_cgv"

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    customer_group: Mapped[str] = mapped_column(String(64), primary_key=True, server_default=DEFAULT_GROUP)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))
    pages: Mapped[int] = mapped_column(Integer)
    after_page: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InvoiceAnnexRow(Base):
    """A file added to an invoice: a PDF annex is merged after its pages, any other file is attached."""

    __tablename__ = "invoice_annexes"
    __table_args__ = (ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),
                      Index("ix_invoice_annexes_tenant_invoice", "tenant_id", "invoice_id"))

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    tenant_id: Mapped[str] = mapped_column(String(63))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CustomerProfileRow(Base):
    """A customer's group and language, as the router announced them (customer.changed)."""

    __tablename__ = "customer_profiles"

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    customer_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_group: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(2))


class TenantBrandingRow(Base):
    """A tenant's look on the PDFs ingest renders, as channels announced it (tenant.branding_changed);
    `fingerprint` (SHA-256 of all of it) goes into the rendered documents' cache keys."""

    __tablename__ = "tenant_brandings"

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    primary_color: Mapped[str | None] = mapped_column(String(7))
    text_color: Mapped[str | None] = mapped_column(String(7))
    legal_footer: Mapped[str | None] = mapped_column(String(300))
    logo_media_type: Mapped[str | None] = mapped_column(String(32))
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    fingerprint: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PreparedDocumentRow(Base):
    """A document ingest built for an invoice (`kind` rendered: its PDF rendered from data; facturx: the
    outgoing Factur-X), under the hash of everything it was built from (`inputs_key`): a change of CGV,
    annexes, language or builder gives another key, hence a fresh build."""

    __tablename__ = "prepared_documents"
    __table_args__ = (ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),
                      Index("ix_prepared_documents_invoice", "invoice_id"))

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    inputs_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

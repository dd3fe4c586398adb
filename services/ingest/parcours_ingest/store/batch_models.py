"""Tables of batches: a file of many invoices received at once and worked through in the
background (claimed with SKIP LOCKED under a lease, so replicas share them and a crash resumes),
its items' outcomes, and the tenants' column-mapping profiles and PDF split rules."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, Integer, LargeBinary, String, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from parcours_ingest.store.models import Base


class BatchRow(Base):
    """One batch: what it is, where processing stands (`processed_items` is also the resume cursor)."""

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_claimable", "created_at", postgresql_where=text("status IN ('pending', 'processing')")),
        Index("ix_batches_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))  # json, csv, xlsx, pdf-split
    status: Mapped[str] = mapped_column(String(16), server_default="pending")  # pending, processing, done, failed
    # what the batch is read with, frozen when it is received: the mapping profile, the split rule
    options: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    filename: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(128))  # given by the sender; else each invoice's id
    total_items: Mapped[int | None] = mapped_column(Integer)
    processed_items: Mapped[int] = mapped_column(Integer, server_default="0")
    accepted_items: Mapped[int] = mapped_column(Integer, server_default="0")
    rejected_items: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[dict | None] = mapped_column(JSONB)  # why the whole batch failed, as a problem
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    claim_token: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BatchFileRow(Base):
    """A file of the batch: `data` (the JSON, CSV, XLSX or items), `pdf` (to split), `part-<n>` (an unmatched part)."""

    __tablename__ = "batch_files"
    __table_args__ = (ForeignKeyConstraint(["batch_id"], ["batches.id"], ondelete="CASCADE"),)

    batch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63))
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class BatchItemRow(Base):
    """The outcome of one item (an invoice, a row group of a spreadsheet, a part of a split PDF)."""

    __tablename__ = "batch_items"
    __table_args__ = (ForeignKeyConstraint(["batch_id"], ["batches.id"], ondelete="CASCADE"),)

    batch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))  # accepted, rejected, duplicate, unmatched
    number: Mapped[str | None] = mapped_column(String(64))
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # where the item is in the file: its rows (CSV/XLSX, as numbered in the file) or its pages (PDF, 1-based)
    location: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    code: Mapped[str | None] = mapped_column(String(64))  # the problem type slug of a refused item
    detail: Mapped[str | None] = mapped_column(String(1000))
    errors: Mapped[list | None] = mapped_column(JSONB)


class _NamedDefinition:
    """A tenant's named definition, as JSON checked by the API when saved."""

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    definition: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MappingProfileRow(_NamedDefinition, Base):
    """How a tenant's CSV/XLSX export maps to the invoice model: column → field, plus reading options."""

    __tablename__ = "mapping_profiles"


class SplitRuleRow(_NamedDefinition, Base):
    """How a tenant's batch PDF is cut into one PDF per invoice (fixed page count or text anchor)."""

    __tablename__ = "split_rules"

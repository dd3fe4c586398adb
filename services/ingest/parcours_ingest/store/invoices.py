"""Queries on invoices, their PDFs and idempotency keys; always scoped to one tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_ingest.domain.duplicates import DuplicateKey, duplicate_key
from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.store.blobs import BlobStore
from parcours_ingest.store.models import IdempotencyKeyRow, InvoicePdfRow, InvoiceRow, InvoiceSourceRow


@dataclass(frozen=True)
class SourceDocument:
    """The document an invoice was read from: `format` ubl, cii or factur-x; `content` the XML."""

    format: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class KeptDocuments:
    """An invoice's PDF and the document it was read from, as kept in the blob store (their SHA-256)."""

    pdf_sha256: str | None = None
    source: SourceDocument | None = None
    source_sha256: str | None = None


@dataclass(frozen=True)
class InvoiceRows:
    """The rows of one invoice, as column values: the invoice, its PDF and source document if any."""

    invoice: dict[str, Any]
    pdf: dict[str, Any] | None = None
    source: dict[str, Any] | None = None

    @property
    def has_pdf(self) -> bool:
        return self.pdf is not None


async def insert_invoices(session: AsyncSession, invoices: list[InvoiceRows]) -> None:
    """One INSERT per table (plain statements: no ORM unit of work for rows never read back here): the
    invoices first, where the duplicate key is checked, then their PDFs and source documents."""
    if not invoices:
        return
    await session.execute(insert(InvoiceRow.__table__), [rows.invoice for rows in invoices])
    for model, attached in ((InvoicePdfRow, [rows.pdf for rows in invoices if rows.pdf is not None]),
                            (InvoiceSourceRow, [rows.source for rows in invoices if rows.source is not None])):
        if attached:
            await session.execute(insert(model.__table__), attached)


async def keep_documents(blobs: BlobStore, *, tenant_id: str, invoice: Invoice, pdf: bytes | None = None,
                         source: SourceDocument | None = None) -> KeptDocuments:
    """Put the invoice's PDF (sent apart, or in the JSON) and its source document in the tenant's blob store,
    before the transaction that refers to them: a refused or duplicate invoice may leave a blob nothing refers
    to (content-addressed: stored once whatever the number of attempts), never a row without its blob."""
    pdf = pdf if pdf is not None else invoice.pdf_bytes()
    return KeptDocuments(pdf_sha256=await blobs.put(tenant_id, pdf) if pdf is not None else None, source=source,
                         source_sha256=await blobs.put(tenant_id, source.content) if source is not None else None)


def invoice_rows(*, tenant_id: str, invoice_id: uuid.UUID, invoice: Invoice, correlation_id: str,
                 documents: KeptDocuments = KeptDocuments()) -> InvoiceRows:
    """The rows of one invoice (batches insert many invoices' rows at once); its documents by their hash."""
    key, source = duplicate_key(invoice), documents.source
    return InvoiceRows(
        invoice=dict(id=invoice_id, tenant_id=tenant_id, number=invoice.number, issue_date=invoice.issue_date,
                     issue_year=key.issue_year, seller_key=key.seller, due_date=invoice.due_date,
                     currency=invoice.currency, customer_ref=invoice.buyer.customer_ref,
                     total_incl_tax=invoice.totals.total_incl_tax, document=invoice.document(),
                     has_pdf=documents.pdf_sha256 is not None, correlation_id=correlation_id,
                     source_format=source.format if source is not None else "json"),
        pdf=dict(invoice_id=invoice_id, tenant_id=tenant_id, sha256=documents.pdf_sha256, content=None)
        if documents.pdf_sha256 is not None else None,
        source=dict(invoice_id=invoice_id, tenant_id=tenant_id, media_type=source.media_type,
                    sha256=documents.source_sha256, content=None) if source is not None else None)


async def keys_taken(session: AsyncSession, *, tenant_id: str, keys: list[DuplicateKey]) -> dict[DuplicateKey, uuid.UUID]:
    """Which of these duplicate keys the tenant already has, with their invoices' ids."""
    if not keys:
        return {}
    found = await session.execute(
        select(InvoiceRow.number, InvoiceRow.seller_key, InvoiceRow.issue_year, InvoiceRow.id).where(
            InvoiceRow.tenant_id == tenant_id, InvoiceRow.number.in_({key.number for key in keys})))
    wanted = set(keys)
    return {key: invoice_id for number, seller, year, invoice_id in found
            if (key := DuplicateKey(number=number, seller=seller, issue_year=year)) in wanted}


async def get_invoice(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID) -> InvoiceRow | None:
    """The tenant's invoice, or None (also when it belongs to another tenant)."""
    return (await session.execute(
        select(InvoiceRow).where(InvoiceRow.tenant_id == tenant_id, InvoiceRow.id == invoice_id)
    )).scalar_one_or_none()


async def get_pdf(session: AsyncSession, blobs: BlobStore, *, tenant_id: str, invoice_id: uuid.UUID) -> bytes | None:
    """The PDF of the tenant's invoice (from the blob store; in the row for invoices received before it), or None."""
    row = (await session.execute(
        select(InvoicePdfRow.content, InvoicePdfRow.sha256)
        .where(InvoicePdfRow.tenant_id == tenant_id, InvoicePdfRow.invoice_id == invoice_id)
    )).first()
    if row is None:
        return None
    return row.content if row.content is not None else await blobs.get(tenant_id, row.sha256)


@dataclass(frozen=True)
class StoredSource:
    media_type: str
    sha256: str
    content: bytes


async def get_source(session: AsyncSession, blobs: BlobStore, *, tenant_id: str,
                     invoice_id: uuid.UUID) -> StoredSource | None:
    """The document the tenant's invoice was read from, or None (sent as JSON, another tenant's, blob missing)."""
    row = (await session.execute(
        select(InvoiceSourceRow.media_type, InvoiceSourceRow.sha256, InvoiceSourceRow.content)
        .where(InvoiceSourceRow.tenant_id == tenant_id, InvoiceSourceRow.invoice_id == invoice_id)
    )).first()
    if row is None:
        return None
    content = row.content if row.content is not None else await blobs.get(tenant_id, row.sha256)
    return StoredSource(row.media_type, row.sha256, content) if content is not None else None


async def invoice_with_key(session: AsyncSession, *, tenant_id: str, key: DuplicateKey) -> uuid.UUID | None:
    """The id of the tenant's invoice with this duplicate key (number, seller, issue year), if any."""
    return (await session.execute(
        select(InvoiceRow.id).where(InvoiceRow.tenant_id == tenant_id, InvoiceRow.number == key.number,
                                    InvoiceRow.seller_key == key.seller, InvoiceRow.issue_year == key.issue_year)
    )).scalar_one_or_none()


async def find_idempotency_key(session: AsyncSession, *, tenant_id: str, key: str) -> IdempotencyKeyRow | None:
    """The stored outcome of the tenant's first request with `key`, if any."""
    return (await session.execute(
        select(IdempotencyKeyRow).where(IdempotencyKeyRow.tenant_id == tenant_id, IdempotencyKeyRow.key == key)
    )).scalar_one_or_none()


async def add_idempotency_key(session: AsyncSession, *, tenant_id: str, key: str, request_hash: str, status: int,
                              response_json: dict) -> None:
    """Remember the response to `key`; raises IntegrityError if a concurrent request took the key first."""
    session.add(IdempotencyKeyRow(tenant_id=tenant_id, key=key, request_hash=request_hash, status=status,
                                  response_json=response_json))
    await session.flush()

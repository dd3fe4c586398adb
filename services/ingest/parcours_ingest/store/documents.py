"""Queries on CGV, annexes, customer profiles and prepared documents; always scoped to one tenant."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_ingest.store.document_models import (
    DEFAULT_GROUP, CustomerProfileRow, InvoiceAnnexRow, PreparedDocumentRow, TenantBrandingRow, TenantCgvRow,
)


async def put_cgv(session: AsyncSession, *, tenant_id: str, group: str, sha256: str, filename: str | None, pages: int,
                  after_page: int | None) -> TenantCgvRow:
    """Set (or replace) the tenant's CGV for `group` ("" = every customer without a group CGV)."""
    values = {"sha256": sha256, "filename": filename, "pages": pages, "after_page": after_page}
    await session.execute(insert(TenantCgvRow).values(tenant_id=tenant_id, customer_group=group, **values)
                          .on_conflict_do_update(index_elements=["tenant_id", "customer_group"], set_=values))
    return (await session.execute(select(TenantCgvRow).where(TenantCgvRow.tenant_id == tenant_id,
                                                             TenantCgvRow.customer_group == group)
                                  .execution_options(populate_existing=True))).scalar_one()


async def list_cgv(session: AsyncSession, *, tenant_id: str) -> list[TenantCgvRow]:
    return list((await session.execute(select(TenantCgvRow).where(TenantCgvRow.tenant_id == tenant_id)
                                       .order_by(TenantCgvRow.customer_group))).scalars())


async def delete_cgv(session: AsyncSession, *, tenant_id: str, group: str) -> bool:
    result = await session.execute(delete(TenantCgvRow).where(TenantCgvRow.tenant_id == tenant_id,
                                                              TenantCgvRow.customer_group == group))
    return result.rowcount > 0


async def cgv_for(session: AsyncSession, *, tenant_id: str, group: str | None) -> TenantCgvRow | None:
    """The CGV of the customer's group, else the tenant's default one, else None."""
    groups = [DEFAULT_GROUP] if not group else [group, DEFAULT_GROUP]
    rows = {row.customer_group: row for row in (await session.execute(
        select(TenantCgvRow).where(TenantCgvRow.tenant_id == tenant_id, TenantCgvRow.customer_group.in_(groups))
    )).scalars()}
    return next((rows[g] for g in groups if g in rows), None)


async def add_annex(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID, filename: str, media_type: str,
                    sha256: str, size: int) -> InvoiceAnnexRow:
    row = InvoiceAnnexRow(id=uuid.uuid4(), tenant_id=tenant_id, invoice_id=invoice_id, filename=filename,
                          media_type=media_type, sha256=sha256, size=size)
    session.add(row)
    await session.flush()
    await session.refresh(row, ["created_at"])
    return row


async def annexes_of(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID) -> list[InvoiceAnnexRow]:
    return list((await session.execute(
        select(InvoiceAnnexRow).where(InvoiceAnnexRow.tenant_id == tenant_id, InvoiceAnnexRow.invoice_id == invoice_id)
        .order_by(InvoiceAnnexRow.created_at, InvoiceAnnexRow.id))).scalars())


async def customer_profile(session: AsyncSession, *, tenant_id: str, customer_ref: str) -> CustomerProfileRow | None:
    return await session.get(CustomerProfileRow, (tenant_id, customer_ref))


async def save_customer_profile(session: AsyncSession, *, tenant_id: str, customer_ref: str, group: str | None,
                                language: str | None, deleted: bool = False) -> None:
    """What the router announced of a customer (its last word wins: events of one customer are in order)."""
    if deleted:
        await session.execute(delete(CustomerProfileRow).where(CustomerProfileRow.tenant_id == tenant_id,
                                                               CustomerProfileRow.customer_ref == customer_ref))
        return
    values = {"customer_group": group, "language": language}
    await session.execute(insert(CustomerProfileRow).values(tenant_id=tenant_id, customer_ref=customer_ref, **values)
                          .on_conflict_do_update(index_elements=["tenant_id", "customer_ref"], set_=values))


async def branding_of(session: AsyncSession, *, tenant_id: str) -> TenantBrandingRow | None:
    return await session.get(TenantBrandingRow, tenant_id)


async def save_branding(session: AsyncSession, *, tenant_id: str, occurred_at: datetime, values: dict | None) -> None:
    """What channels announced of the tenant's branding (None: deleted). Events of a tenant come in order;
    an older one than the row (a replay) changes nothing."""
    if values is None:
        await session.execute(delete(TenantBrandingRow).where(TenantBrandingRow.tenant_id == tenant_id,
                                                              TenantBrandingRow.occurred_at <= occurred_at))
        return
    values = {**values, "occurred_at": occurred_at}
    statement = insert(TenantBrandingRow).values(tenant_id=tenant_id, **values)
    await session.execute(statement.on_conflict_do_update(
        index_elements=["tenant_id"], set_=values, where=TenantBrandingRow.occurred_at <= occurred_at))


async def prepared_document(session: AsyncSession, *, tenant_id: str, inputs_key: str) -> str | None:
    """The SHA-256 of the blob built from these inputs, if one was."""
    return (await session.execute(select(PreparedDocumentRow.sha256).where(
        PreparedDocumentRow.tenant_id == tenant_id, PreparedDocumentRow.inputs_key == inputs_key))).scalar_one_or_none()


async def remember_prepared(session: AsyncSession, *, tenant_id: str, inputs_key: str, invoice_id: uuid.UUID, kind: str,
                            sha256: str) -> None:
    """Record a built document (a rebuild of the same inputs, e.g. after its blob was lost, replaces the record)."""
    statement = insert(PreparedDocumentRow).values(tenant_id=tenant_id, inputs_key=inputs_key, invoice_id=invoice_id,
                                                   kind=kind, sha256=sha256)
    await session.execute(statement.on_conflict_do_update(index_elements=["tenant_id", "inputs_key"],
                                                          set_={"sha256": statement.excluded.sha256}))

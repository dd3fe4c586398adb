"""Journal appends, the invoice projection, and the queries the API reads them with."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import InvoiceSummary
from parcours_contracts.events import InvoiceEvent
from parcours_tracker.domain.journal import RECEIVED, Entry
from parcours_tracker.domain.status import PENDING, project
from parcours_tracker.store.models import Invoice, JournalEntry


async def record(session: AsyncSession, *, event: InvoiceEvent, entry: Entry, summary: InvoiceSummary | None = None,
                 customer_ref: str | None = None) -> bool:
    """Append an event's entry to its invoice's journal and refresh the projection; False if already there."""
    appended = (await session.execute(
        insert(JournalEntry)
        .values(tenant_id=event.tenant_id, invoice_id=event.invoice_id, event_id=entry.event_id, kind=entry.kind,
                occurred_at=entry.occurred_at, detail=entry.detail)
        .on_conflict_do_nothing(index_elements=[JournalEntry.event_id])
        .returning(JournalEntry.id)
    )).first()
    if appended is None:
        return False  # a redelivery, or our own event coming back from the broker

    await session.execute(
        insert(Invoice)
        .values(tenant_id=event.tenant_id, invoice_id=event.invoice_id, correlation_id=event.correlation_id,
                status=PENDING)
        .on_conflict_do_nothing(index_elements=[Invoice.tenant_id, Invoice.invoice_id])
    )
    # The row lock serialises concurrent appends for one invoice: whoever commits last projects all facts.
    invoice = (await session.execute(
        select(Invoice).where(Invoice.tenant_id == event.tenant_id, Invoice.invoice_id == event.invoice_id)
        .with_for_update()
    )).scalar_one()
    projection = project(await entries_of(session, tenant_id=event.tenant_id, invoice_id=event.invoice_id))
    changes = dict(status=projection.status, status_at=projection.status_at,
                   first_dispatched_at=projection.first_dispatched_at, acked_at=projection.acked_at,
                   viewed_at=projection.viewed_at, updated_at=func.now())
    if entry.kind == RECEIVED:  # a click may have created the row first, with the invoice id as correlation
        changes["correlation_id"] = event.correlation_id
    # InvoiceReceived is authoritative for the summary; a dispatch or reminder's copy fills in until it arrives.
    if summary is not None and (invoice.summary is None or entry.kind == RECEIVED):
        changes.update(summary=summary.model_dump(mode="json"), number=summary.number,
                       customer_ref=summary.customer_ref)
    elif customer_ref is not None and invoice.customer_ref is None:
        changes["customer_ref"] = customer_ref
    await session.execute(
        update(Invoice).where(Invoice.tenant_id == event.tenant_id, Invoice.invoice_id == event.invoice_id)
        .values(**changes)
    )
    return True


async def entries_of(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID) -> list[Entry]:
    """An invoice's journal, ordered by when things happened (not by when we learned them)."""
    rows = (await session.execute(
        select(JournalEntry)
        .where(JournalEntry.tenant_id == tenant_id, JournalEntry.invoice_id == invoice_id)
        .order_by(JournalEntry.occurred_at, JournalEntry.id)
    )).scalars()
    return [Entry(event_id=row.event_id, kind=row.kind, occurred_at=row.occurred_at, detail=row.detail)
            for row in rows]


async def find_invoice(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID) -> Invoice | None:
    """The tenant's invoice, or None (also for another tenant's)."""
    return (await session.execute(
        select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.invoice_id == invoice_id)
    )).scalar_one_or_none()


async def list_invoices(session: AsyncSession, *, tenant_id: str, status: str | None = None,
                        customer_ref: str | None = None, before_seq: int | None = None,
                        limit: int = 50) -> list[Invoice]:
    """The tenant's invoices, newest first, from a keyset position."""
    query = select(Invoice).where(Invoice.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Invoice.status == status)
    if customer_ref is not None:
        query = query.where(Invoice.customer_ref == customer_ref)
    if before_seq is not None:
        query = query.where(Invoice.seq < before_seq)
    return list((await session.execute(query.order_by(Invoice.seq.desc()).limit(limit))).scalars())

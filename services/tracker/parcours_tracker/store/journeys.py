"""Journal appends, the invoice projection, and the queries the API reads them with."""

from __future__ import annotations

import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select, text, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import InvoiceSummary
from parcours_contracts.events import InvoiceEvent
from parcours_runtime.clock import Clock, SystemClock
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import incidents as rules
from parcours_tracker.domain.following import Fact, Windows
from parcours_tracker.domain.journal import DISPATCHED, REMINDED, Entry
from parcours_tracker.domain.status import Projection
from parcours_tracker.store.models import OPENS_PREDICATE, Invoice, JournalEntry
from parcours_tracker.store.recording import record_many


@dataclass
class Tracking:
    """What recording a fact needs besides the database: receipt windows, holidays, the clock."""

    windows: dict[str, rules.ReceiptWindow] = field(default_factory=lambda: dict(rules.DEFAULT_WINDOWS))
    holidays: Container[date] = ()
    clock: Clock = field(default_factory=SystemClock)


def fact_of(event: InvoiceEvent, entry: Entry, *, summary: InvoiceSummary | None = None,
            customer_ref: str | None = None) -> Fact:
    """The fact a consumed (or self-published) event records."""
    return Fact(tenant_id=event.tenant_id, invoice_id=event.invoice_id, correlation_id=event.correlation_id,
                entry=entry, summary=summary, customer_ref=customer_ref)


async def record_facts(uow: UnitOfWork, tracking: Tracking, facts: Sequence[Fact]) -> list[Projection | None]:
    """Record facts set-based (`store.recording`); per fact its invoice's projection, None if already journaled."""
    return await record_many(uow, Windows(tracking.windows, tracking.holidays), tracking.clock.now(), facts)


async def record_event(uow: UnitOfWork, tracking: Tracking, *, event: InvoiceEvent, entry: Entry,
                       summary: InvoiceSummary | None = None, customer_ref: str | None = None) -> Projection | None:
    """Record a consumed (or self-published) event's entry; see `record`."""
    return (await record_facts(uow, tracking, [fact_of(event, entry, summary=summary, customer_ref=customer_ref)]))[0]


async def record(uow: UnitOfWork, tracking: Tracking, *, tenant_id: str, invoice_id: uuid.UUID, correlation_id: str,
                 entry: Entry, summary: InvoiceSummary | None = None, customer_ref: str | None = None,
                 ) -> Projection | None:
    """Append a fact to its invoice's journal, re-project, and publish what changed (lifecycle,
    incidents) in the same transaction; None if the journal already held the fact."""
    fact = Fact(tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=correlation_id, entry=entry,
                summary=summary, customer_ref=customer_ref)
    return (await record_facts(uow, tracking, [fact]))[0]


async def entries_of(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID) -> list[Entry]:
    """An invoice's journal, ordered by when things happened (not by when we learned them)."""
    rows = (await session.execute(
        select(JournalEntry)
        .where(JournalEntry.tenant_id == tenant_id, JournalEntry.invoice_id == invoice_id)
        .order_by(JournalEntry.occurred_at, JournalEntry.id)
    )).scalars()
    return [Entry(event_id=row.event_id, kind=row.kind, occurred_at=row.occurred_at, detail=row.detail)
            for row in rows]


async def dispatch_times(session: AsyncSession, *, keys: list[tuple[str, uuid.UUID]],
                         ) -> dict[tuple[str, uuid.UUID, str], datetime]:
    """When each dispatch of these invoices was handed to its transport: (tenant, invoice, dispatch id) → instant."""
    if not keys:
        return {}
    dispatch = JournalEntry.detail["dispatch_id"].astext
    rows = (await session.execute(
        select(JournalEntry.tenant_id, JournalEntry.invoice_id, dispatch, func.min(JournalEntry.occurred_at))
        .where(tuple_(JournalEntry.tenant_id, JournalEntry.invoice_id).in_(keys),
               JournalEntry.kind.in_((DISPATCHED, REMINDED)))
        .group_by(JournalEntry.tenant_id, JournalEntry.invoice_id, dispatch)
    )).all()
    return {(row[0], row[1], row[2]): row[3] for row in rows}


async def find_invoice(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID) -> Invoice | None:
    """The tenant's invoice, or None (also for another tenant's)."""
    return (await session.execute(
        select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.invoice_id == invoice_id)
    )).scalar_one_or_none()


async def list_invoices(session: AsyncSession, *, tenant_id: str, status: str | None = None,
                        customer_ref: str | None = None, changed_since: datetime | None = None,
                        before_seq: int | None = None, limit: int = 50) -> list[Invoice]:
    """The tenant's invoices, newest first, from a keyset position; `changed_since`: only those the
    tracker learned something about at or after that instant (their row was updated, or a link of
    theirs was opened: opens are only journaled)."""
    query = select(Invoice).where(Invoice.tenant_id == tenant_id)
    if changed_since is not None:
        updated = select(Invoice.invoice_id).where(Invoice.tenant_id == tenant_id, Invoice.updated_at >= changed_since)
        opened = select(JournalEntry.invoice_id).where(
            JournalEntry.tenant_id == tenant_id, text(OPENS_PREDICATE), JournalEntry.recorded_at >= changed_since)
        query = query.where(Invoice.invoice_id.in_(union(updated, opened)))
    if status is not None:
        query = query.where(Invoice.status == status)
    if customer_ref is not None:
        query = query.where(Invoice.customer_ref == customer_ref)
    if before_seq is not None:
        query = query.where(Invoice.seq < before_seq)
    return list((await session.execute(query.order_by(Invoice.seq.desc()).limit(limit))).scalars())

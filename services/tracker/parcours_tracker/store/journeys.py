"""Journal appends, the invoice projection, and the queries the API reads them with."""

from __future__ import annotations

import uuid
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import InvoiceLifecycleChanged, InvoiceSummary
from parcours_contracts.events import InvoiceEvent
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import incidents as rules
from parcours_runtime.clock import Clock, SystemClock
from parcours_tracker.domain.journal import ANOMALY, DISPATCHED, RECEIVED, REMINDED, Entry
from parcours_tracker.domain.payments import number_key
from parcours_tracker.domain.status import DELIVERY_INCIDENTS, PENDING, Projection, project
from parcours_tracker.store import incidents
from parcours_tracker.store.models import Invoice, JournalEntry

_ANOMALY_NAMESPACE = uuid.UUID("3b1f8a0e-1c55-4f0e-8f4e-9d6a2c7b5e21")


@dataclass
class Tracking:
    """What recording a fact needs besides the database: receipt windows, holidays, the clock."""

    windows: dict[str, rules.ReceiptWindow] = field(default_factory=lambda: dict(rules.DEFAULT_WINDOWS))
    holidays: Container[date] = ()
    clock: Clock = field(default_factory=SystemClock)


async def record_event(uow: UnitOfWork, tracking: Tracking, *, event: InvoiceEvent, entry: Entry,
                       summary: InvoiceSummary | None = None, customer_ref: str | None = None) -> Projection | None:
    """Record a consumed (or self-published) event's entry; see `record`."""
    return await record(uow, tracking, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                        correlation_id=event.correlation_id, entry=entry, summary=summary, customer_ref=customer_ref)


async def record(uow: UnitOfWork, tracking: Tracking, *, tenant_id: str, invoice_id: uuid.UUID, correlation_id: str,
                 entry: Entry, summary: InvoiceSummary | None = None, customer_ref: str | None = None,
                 ) -> Projection | None:
    """Append a fact to its invoice's journal, re-project, and publish what changed (lifecycle,
    incidents) in the same transaction; None if the journal already held the fact."""
    session = uow.session
    appended = (await session.execute(
        insert(JournalEntry)
        .values(tenant_id=tenant_id, invoice_id=invoice_id, event_id=entry.event_id, kind=entry.kind,
                occurred_at=entry.occurred_at, detail=entry.detail)
        .on_conflict_do_nothing(index_elements=[JournalEntry.event_id])
        .returning(JournalEntry.id)
    )).first()
    if appended is None:
        return None  # a redelivery, or our own event coming back from the broker

    await session.execute(
        insert(Invoice)
        .values(tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=correlation_id, status=PENDING)
        .on_conflict_do_nothing(index_elements=[Invoice.tenant_id, Invoice.invoice_id])
    )
    # The row lock serialises concurrent appends for one invoice: whoever commits last projects all facts.
    invoice = (await session.execute(
        select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.invoice_id == invoice_id).with_for_update()
    )).scalar_one()
    facts = await entries_of(session, tenant_id=tenant_id, invoice_id=invoice_id)
    projection = project(facts)
    previous_status = invoice.status
    changes = dict(status=projection.status, code=projection.code, status_at=projection.status_at,
                   first_dispatched_at=projection.first_dispatched_at, acked_at=projection.acked_at,
                   viewed_at=projection.viewed_at, updated_at=func.now())
    if entry.kind == RECEIVED:  # a click may have created the row first, with the invoice id as correlation
        changes["correlation_id"] = invoice.correlation_id = correlation_id
    # InvoiceReceived is authoritative for the summary; a dispatch or reminder's copy fills in until it arrives.
    if summary is not None and (invoice.summary is None or entry.kind == RECEIVED):
        changes.update(summary=summary.model_dump(mode="json"), number=summary.number,
                       number_key=number_key(summary.number), customer_ref=summary.customer_ref)
    elif customer_ref is not None and invoice.customer_ref is None:
        changes["customer_ref"] = customer_ref
    await session.execute(
        update(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.invoice_id == invoice_id).values(**changes)
    )
    if projection.status != previous_status:
        uow.publish(InvoiceLifecycleChanged(
            tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=invoice.correlation_id,
            status=projection.status, code=projection.code, previous_status=previous_status,
            source=(projection.source or "tracker")[:64], reason=projection.reason, status_at=projection.status_at))
    for anomaly in projection.anomalies:
        await incidents.add_verdict(session, tenant_id=tenant_id, invoice_id=invoice_id,
                                    event_id=uuid.uuid5(_ANOMALY_NAMESPACE, str(anomaly.event_id)), kind=ANOMALY,
                                    occurred_at=anomaly.at, detail=anomaly.detail())
    await _follow_incidents(uow, tracking, invoice=invoice, entry=entry, facts=facts, projection=projection)
    return projection


async def _follow_incidents(uow: UnitOfWork, tracking: Tracking, *, invoice: Invoice, entry: Entry,
                            facts: list[Entry], projection: Projection) -> None:
    """Open the incident a new delivery-incident fact shows, resolve those later facts settled,
    and keep the receipt timer on the proof still awaited."""
    now = tracking.clock.now()
    keys = dict(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id)
    expectation = rules.awaited_proof(facts, projection, tracking.windows, tracking.holidays)
    # First the timer: if the sweep is firing it right now, this waits for the sweep to commit,
    # so the incident it opens is visible below and a proof that crossed it still resolves it.
    await incidents.set_timer(uow.session, **keys, expectation=expectation)
    already_open = await incidents.open_kinds(uow.session, **keys)
    draft = rules.from_delivery_incident(projection.incident) if projection.incident is not None else None
    settled = tuple(kind for kind in already_open & set(DELIVERY_INCIDENTS) if draft is None or kind != draft.kind)
    if settled:
        await incidents.resolve(uow, **keys, correlation_id=invoice.correlation_id, kinds=settled, now=now,
                                resolution=f"settled by a later signal: the invoice is now {projection.status}")
    if draft is not None and projection.incident.event_id == entry.event_id and draft.kind not in already_open:
        await incidents.open_incident(uow, invoice=invoice, draft=draft, now=now)
    if expectation is None and rules.NOT_RECEIVED in already_open:
        await incidents.resolve(uow, **keys, correlation_id=invoice.correlation_id, kinds=(rules.NOT_RECEIVED,),
                                now=now, resolution=f"the awaited signal arrived late: the invoice is now "
                                                    f"{projection.status}" if projection.incident is None
                                else f"superseded by the {projection.status} incident")


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
    tracker learned something about at or after that instant."""
    query = select(Invoice).where(Invoice.tenant_id == tenant_id)
    if changed_since is not None:
        query = query.where(Invoice.updated_at >= changed_since)
    if status is not None:
        query = query.where(Invoice.status == status)
    if customer_ref is not None:
        query = query.where(Invoice.customer_ref == customer_ref)
    if before_seq is not None:
        query = query.where(Invoice.seq < before_seq)
    return list((await session.execute(query.order_by(Invoice.seq.desc()).limit(limit))).scalars())

"""The read model's writes: each event becomes one timeline row (with the evidence it carried) and
updates its invoice's row, in the consumer's transaction. A redelivered event changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import InvoiceSummary
from parcours_contracts.events import InvoiceEvent
from parcours_portal.store.models import Customer, Incident, Invoice, Recipient, TimelineEntry


async def append(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID, event_id: uuid.UUID, kind: str,
                 occurred_at: datetime, detail: dict[str, Any], correlation_id: str) -> bool:
    """Add the timeline row and make sure the invoice row exists; False if the event was already there."""
    added = (await session.execute(
        insert(TimelineEntry).values(tenant_id=tenant_id, invoice_id=invoice_id, event_id=event_id, kind=kind,
                                     occurred_at=occurred_at, detail=detail)
        .on_conflict_do_nothing(index_elements=[TimelineEntry.event_id]).returning(TimelineEntry.id))).first()
    if added is None:
        return False
    await session.execute(insert(Invoice).values(tenant_id=tenant_id, invoice_id=invoice_id,
                                                 correlation_id=correlation_id, status="pending")
                          .on_conflict_do_nothing(index_elements=[Invoice.tenant_id, Invoice.invoice_id]))
    return True


async def record(session: AsyncSession, event: InvoiceEvent, *, kind: str, detail: dict[str, Any],
                 summary: InvoiceSummary | None = None, **changes: Any) -> bool:
    """Append the event's timeline row, then apply `changes` (and the summary) to its invoice."""
    if not await append(session, tenant_id=event.tenant_id, invoice_id=event.invoice_id, event_id=event.event_id,
                        kind=kind, occurred_at=event.occurred_at, detail=detail,
                        correlation_id=event.correlation_id):
        return False
    where = (Invoice.tenant_id == event.tenant_id, Invoice.invoice_id == event.invoice_id)
    if summary is not None:
        current = (await session.execute(select(Invoice.number, Invoice.open_amount).where(*where))).one()
        if current.number is None or kind == "received":  # InvoiceReceived is authoritative
            changes.update(number=summary.number, customer_ref=summary.customer_ref, buyer_name=summary.buyer_name,
                           seller_name=summary.seller_name, issue_date=summary.issue_date,
                           due_date=summary.due_date, currency=summary.currency, total=summary.total_incl_tax,
                           has_pdf=summary.has_pdf)
            if current.open_amount is None:
                changes["open_amount"] = summary.total_incl_tax
    if changes:
        await session.execute(update(Invoice).where(*where).values(**changes, updated_at=func.now()))
    return True


async def open_incident(session: AsyncSession, event) -> None:
    await session.execute(insert(Incident).values(
        tenant_id=event.tenant_id, incident_id=event.incident_id, invoice_id=event.invoice_id, kind=event.kind,
        channel=event.channel, suggested_action=event.suggested_action, evidence=event.evidence, status="open",
        opened_at=event.occurred_at).on_conflict_do_nothing())
    await _count_incidents(session, event)


async def resolve_incident(session: AsyncSession, event) -> None:
    await session.execute(update(Incident).where(
        Incident.tenant_id == event.tenant_id, Incident.incident_id == event.incident_id
    ).values(status="resolved", resolved_at=event.occurred_at, resolution=event.resolution))
    await _count_incidents(session, event)


async def _count_incidents(session: AsyncSession, event) -> None:
    count = (select(func.count()).select_from(Incident)
             .where(Incident.tenant_id == event.tenant_id, Incident.invoice_id == event.invoice_id,
                    Incident.status == "open").scalar_subquery())
    await session.execute(update(Invoice).where(Invoice.tenant_id == event.tenant_id,
                                                Invoice.invoice_id == event.invoice_id)
                          .values(open_incidents=count))


async def upsert_customer(session: AsyncSession, event) -> None:
    values = dict(name=event.name, group=event.group, language=event.language)
    await session.execute(insert(Customer).values(tenant_id=event.tenant_id, customer_ref=event.customer_ref, **values)
                          .on_conflict_do_update(index_elements=[Customer.tenant_id, Customer.customer_ref],
                                                 set_=values))


async def add_recipients(session: AsyncSession, *, tenant_id: str, customer_ref: str, emails: list[str]) -> None:
    """Addresses the customer's invoices go to: they may ask the portal for a sign-in link."""
    await session.execute(insert(Recipient).values([
        dict(tenant_id=tenant_id, customer_ref=customer_ref, email=email.lower()) for email in emails
    ]).on_conflict_do_nothing())

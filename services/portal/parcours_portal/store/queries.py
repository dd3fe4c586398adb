"""What the pages read and the few things they write (users, attachments, requested actions).
Every function takes the tenant and filters on it: a row of another tenant is never returned."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_portal.store.models import Attachment, Customer, Incident, Invoice, TimelineEntry, User

LIST_LIMIT = 200
CHANNELS = ("email_link", "email_attachment")
# What proves an invoice arrived: an ack, a person's view, or any answer of the recipient.
PROOF_KINDS = ("acked", "clicked", "action_requested", "payment")


@dataclass
class InvoiceFilters:
    status: str | None = None
    channel: str | None = None
    customer: str | None = None
    group: str | None = None
    due_from: date | None = None
    due_to: date | None = None
    incident: str | None = None  # "open" | "none"


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email.strip().lower()))).scalar_one_or_none()


async def user_by_id(session: AsyncSession, *, tenant_id: str, user_id: uuid.UUID) -> User | None:
    return (await session.execute(select(User).where(User.tenant_id == tenant_id, User.id == user_id,
                                                     User.disabled.is_(False)))).scalar_one_or_none()


async def put_user(session: AsyncSession, *, tenant_id: str, email: str, name: str, role: str,
                   password_hash: str) -> tuple[User | None, bool]:
    """Create the user, or update it when it belongs to the same tenant; (None, False) if another tenant has it."""
    email = email.strip().lower()
    existing = await user_by_email(session, email)
    if existing is None:
        user = User(id=uuid.uuid4(), tenant_id=tenant_id, email=email, name=name, role=role,
                    password_hash=password_hash)
        session.add(user)
        return user, True
    if existing.tenant_id != tenant_id:
        return None, False
    existing.name, existing.role, existing.password_hash, existing.disabled = name, role, password_hash, False
    return existing, False


def _filtered(tenant_id: str, f: InvoiceFilters):
    query = select(Invoice).where(Invoice.tenant_id == tenant_id)
    if f.status:
        query = query.where(Invoice.status == f.status)
    if f.channel:
        query = query.where(Invoice.channel == f.channel)
    if f.customer:
        query = query.where(Invoice.customer_ref == f.customer)
    if f.group:
        query = query.where(Invoice.customer_ref.in_(
            select(Customer.customer_ref).where(Customer.tenant_id == tenant_id, Customer.group == f.group)))
    if f.due_from:
        query = query.where(Invoice.due_date >= f.due_from)
    if f.due_to:
        query = query.where(Invoice.due_date <= f.due_to)
    if f.incident == "open":
        query = query.where(Invoice.open_incidents > 0)
    elif f.incident == "none":
        query = query.where(Invoice.open_incidents == 0)
    return query


async def list_invoices(session: AsyncSession, *, tenant_id: str, filters: InvoiceFilters,
                        limit: int = LIST_LIMIT) -> list[Invoice]:
    query = _filtered(tenant_id, filters).order_by(Invoice.seq.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def aging_rows(session: AsyncSession, *, tenant_id: str, filters: InvoiceFilters):
    query = _filtered(tenant_id, filters).with_only_columns(Invoice.due_date, Invoice.open_amount, Invoice.status)
    return [tuple(row) for row in (await session.execute(query))]


async def facets(session: AsyncSession, *, tenant_id: str) -> dict[str, list[str]]:
    """The statuses, channels and groups the tenant's data holds (the filters' choices)."""
    async def distinct(column, model=Invoice):
        query = select(column).where(model.tenant_id == tenant_id, column.is_not(None)).distinct().order_by(column)
        return list((await session.execute(query)).scalars())

    return {"status": await distinct(Invoice.status), "channel": await distinct(Invoice.channel),
            "group": await distinct(Customer.group, Customer)}


async def channel_choices(session: AsyncSession, *, tenant_id: str) -> list[str]:
    """Channels an invoice may be switched to: those offered everywhere, and those the tenant's events show."""
    return sorted(set(CHANNELS) | set((await facets(session, tenant_id=tenant_id))["channel"]))


async def invoice(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID,
                  customer_ref: str | None = None) -> Invoice | None:
    query = select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.invoice_id == invoice_id)
    if customer_ref is not None:
        query = query.where(Invoice.customer_ref == customer_ref)
    return (await session.execute(query)).scalar_one_or_none()


async def timeline(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID,
                   kinds: tuple[str, ...] | None = None) -> list[TimelineEntry]:
    query = (select(TimelineEntry).where(TimelineEntry.tenant_id == tenant_id, TimelineEntry.invoice_id == invoice_id)
             .order_by(TimelineEntry.occurred_at, TimelineEntry.id))
    if kinds is not None:
        query = query.where(TimelineEntry.kind.in_(kinds))
    return list((await session.execute(query)).scalars())


async def incidents(session: AsyncSession, *, tenant_id: str, status: str | None = "open",
                    invoice_id: uuid.UUID | None = None) -> list[tuple[Incident, str | None]]:
    query = (select(Incident, Invoice.number)
             .join(Invoice, (Invoice.tenant_id == Incident.tenant_id) & (Invoice.invoice_id == Incident.invoice_id))
             .where(Incident.tenant_id == tenant_id).order_by(Incident.opened_at.desc()).limit(LIST_LIMIT))
    if status is not None:
        query = query.where(Incident.status == status)
    if invoice_id is not None:
        query = query.where(Incident.invoice_id == invoice_id)
    return [tuple(row) for row in (await session.execute(query))]


async def incident(session: AsyncSession, *, tenant_id: str, incident_id: uuid.UUID) -> Incident | None:
    return (await session.execute(select(Incident).where(
        Incident.tenant_id == tenant_id, Incident.incident_id == incident_id).with_for_update())).scalar_one_or_none()


async def customer_invoices(session: AsyncSession, *, tenant_id: str, customer_ref: str) -> list[Invoice]:
    query = (select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.customer_ref == customer_ref)
             .order_by(Invoice.seq.desc()).limit(LIST_LIMIT))
    return list((await session.execute(query)).scalars())


async def customer_name(session: AsyncSession, *, tenant_id: str, customer_ref: str) -> str | None:
    return (await session.execute(select(Customer.name).where(
        Customer.tenant_id == tenant_id, Customer.customer_ref == customer_ref))).scalar_one_or_none()


async def attachment(session: AsyncSession, *, tenant_id: str, attachment_id: uuid.UUID) -> Attachment | None:
    return (await session.execute(select(Attachment).where(
        Attachment.tenant_id == tenant_id, Attachment.id == attachment_id))).scalar_one_or_none()


async def delivery_rows(session: AsyncSession, *, tenant_id: str, filters: InvoiceFilters):
    """Per invoice of the filters: (channel, first dispatch of the invoice, first proof of receipt)."""
    sent = func.min(TimelineEntry.occurred_at).filter(
        TimelineEntry.kind == "dispatched", TimelineEntry.detail["purpose"].astext == "invoice")
    proven = func.min(TimelineEntry.occurred_at).filter(TimelineEntry.kind.in_(PROOF_KINDS))
    invoices = _filtered(tenant_id, filters).with_only_columns(Invoice.invoice_id, Invoice.channel).subquery()
    query = (select(invoices.c.channel, sent, proven)
             .join(TimelineEntry, (TimelineEntry.tenant_id == tenant_id)
                   & (TimelineEntry.invoice_id == invoices.c.invoice_id))
             .group_by(invoices.c.invoice_id, invoices.c.channel))
    return [tuple(row) for row in await session.execute(query)]


async def dso_rows(session: AsyncSession, *, tenant_id: str, filters: InvoiceFilters):
    """The filters' invoices as (id, issue date, total), and their payments as (invoice id, paid on, amount)."""
    invoices = [tuple(row) for row in await session.execute(
        _filtered(tenant_id, filters).with_only_columns(Invoice.invoice_id, Invoice.issue_date, Invoice.total))]
    chosen = _filtered(tenant_id, filters).with_only_columns(Invoice.invoice_id).subquery()
    rows = await session.execute(
        select(TimelineEntry.invoice_id, TimelineEntry.detail["paid_on"].astext, TimelineEntry.detail["amount"].astext)
        .join(chosen, chosen.c.invoice_id == TimelineEntry.invoice_id)
        .where(TimelineEntry.tenant_id == tenant_id, TimelineEntry.kind == "payment"))
    payments = [(key, date.fromisoformat(on), Decimal(amount)) for key, on, amount in rows if on and amount]
    return invoices, payments


async def reminder_rows(session: AsyncSession, *, tenant_id: str, filters: InvoiceFilters):
    """Per invoice of the filters that was reminded: its status."""
    query = _filtered(tenant_id, filters).where(Invoice.reminders > 0).with_only_columns(Invoice.status)
    return list((await session.execute(query)).scalars())


async def set_disabled(session: AsyncSession, *, tenant_id: str, user_id: uuid.UUID, disabled: bool) -> bool:
    """Disable or enable the tenant's user; False if the tenant has no such user."""
    changed = await session.execute(update(User).where(User.tenant_id == tenant_id, User.id == user_id)
                                    .values(disabled=disabled).returning(User.id))
    return changed.first() is not None


async def users_of(session: AsyncSession, *, tenant_id: str) -> list[User]:
    return list((await session.execute(select(User).where(User.tenant_id == tenant_id).order_by(User.email))).scalars())

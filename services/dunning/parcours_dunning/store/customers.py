"""What dunning keeps per customer besides the router's directory: its own settings (time
zone override, grouping of reminders) and the operators' customer-wide pauses and resumes,
which every invoice of the customer reads as facts of its life."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import BigInteger, Boolean, DateTime, Identity, Index, String, Text, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_dunning.domain.facts import Signal
from parcours_dunning.store.base import Base, among
from parcours_dunning.store.invoices import Invoice, InvoiceKey
from parcours_dunning.store.strategies import Customer


class CustomerSettings(Base):
    __tablename__ = "customer_settings"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    timezone: Mapped[str | None] = mapped_column(String(64), doc="Overrides the directory's zone.")
    group_reminders: Mapped[bool] = mapped_column(Boolean, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CustomerSignal(Base):
    """An operator paused or resumed dunning of a whole customer."""

    __tablename__ = "customer_signals"
    __table_args__ = (Index("ix_customer_signals_customer", "tenant_id", "customer_ref", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), doc="customer_pause | customer_resume")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str] = mapped_column(Text, server_default="")


@dataclass(frozen=True)
class CustomerContext:
    """What an invoice's facts take from its customer."""

    tags: frozenset[str] = frozenset()
    timezone: str | None = None
    group_reminders: bool = False
    signals: tuple[Signal, ...] = field(default_factory=tuple)

    @property
    def paused(self) -> Signal | None:
        """The pause in force, if the last customer-wide signal is one."""
        last = max(self.signals, key=lambda s: s.at, default=None)
        return last if last is not None and last.kind == "customer_pause" else None


CustomerKey = tuple[str, str]


async def customer_context(session: AsyncSession, *, tenant_id: str, customer_ref: str) -> CustomerContext:
    return (await customer_contexts(session, keys={(tenant_id, customer_ref)}))[(tenant_id, customer_ref)]


async def customer_contexts(session: AsyncSession, *, keys: set[CustomerKey]) -> dict[CustomerKey, CustomerContext]:
    """What the invoices of these customers take from them, in three statements for all."""
    if not keys:
        return {}
    customers = {(c.tenant_id, c.customer_ref): c for c in (await session.scalars(select(Customer).where(
        among(Customer.tenant_id, Customer.customer_ref, keys)))).all()}
    settings = {(c.tenant_id, c.customer_ref): c for c in (await session.scalars(select(CustomerSettings).where(
        among(CustomerSettings.tenant_id, CustomerSettings.customer_ref, keys)))).all()}
    signals: dict[CustomerKey, list[Signal]] = {key: [] for key in keys}
    for tenant_id, customer_ref, at, kind, detail in await session.execute(select(
            CustomerSignal.tenant_id, CustomerSignal.customer_ref, CustomerSignal.at, CustomerSignal.kind,
            CustomerSignal.detail).where(among(CustomerSignal.tenant_id, CustomerSignal.customer_ref, keys))
            .order_by(CustomerSignal.at, CustomerSignal.id)):
        if (found := signals.get((tenant_id, customer_ref))) is not None:
            found.append(Signal(at=at, kind=kind, detail=detail))
    return {key: _context(customers.get(key), settings.get(key), signals[key]) for key in keys}


def _context(customer: Customer | None, settings: CustomerSettings | None, signals: list[Signal]) -> CustomerContext:
    listed = customer is not None and not customer.deleted
    return CustomerContext(
        tags=frozenset(customer.tags) if listed else frozenset(),
        timezone=(settings.timezone if settings and settings.timezone else None)
        or (customer.timezone if listed else None),
        group_reminders=bool(settings and settings.group_reminders),
        signals=tuple(signals))


async def put_settings(session: AsyncSession, *, tenant_id: str, customer_ref: str, timezone: str | None,
                       group_reminders: bool) -> None:
    values = dict(timezone=timezone, group_reminders=group_reminders, updated_at=func.now())
    stmt = insert(CustomerSettings).values(tenant_id=tenant_id, customer_ref=customer_ref, **values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[CustomerSettings.tenant_id, CustomerSettings.customer_ref], set_=values))


def add_customer_signal(session: AsyncSession, *, tenant_id: str, customer_ref: str, kind: str, at: datetime,
                        detail: str) -> None:
    session.add(CustomerSignal(tenant_id=tenant_id, customer_ref=customer_ref, kind=kind, at=at, detail=detail))


async def invoices_of_customer(session: AsyncSession, *, tenant_id: str, customer_ref: str) -> list[InvoiceKey]:
    """Every invoice of the customer dunning knows (the caller skips those whose dunning ended)."""
    rows = await session.execute(select(Invoice.tenant_id, Invoice.invoice_id).where(
        Invoice.tenant_id == tenant_id, Invoice.customer_ref == customer_ref).order_by(Invoice.due_date))
    return [(t, i) for t, i in rows.all()]


async def overdue_invoices(session: AsyncSession, *, tenant_id: str, customer_ref: str, before: date,
                           limit: int) -> list[Invoice]:
    """The customer's invoices due before `before`, oldest first (paid or not: the caller checks)."""
    return list((await session.scalars(select(Invoice).where(
        Invoice.tenant_id == tenant_id, Invoice.customer_ref == customer_ref, Invoice.due_date < before)
        .order_by(Invoice.due_date, Invoice.invoice_id).limit(limit))).all())


class CustomerDunningRead(BaseModel):
    """Body of `GET/PUT /v1/customers/{ref}/dunning` and the customer pause/resume routes."""

    customer_ref: str
    timezone: str | None
    group_reminders: bool
    paused: bool
    paused_since: datetime | None
    pause_reason: str | None
    invoices: int

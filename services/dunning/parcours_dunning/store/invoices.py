"""What dunning knows of each invoice: its terms from ingest, receipt evidence from the
tracker's events, dispatch outcomes and bounces from channels, lifecycle statuses, payments,
promises and operator holds. Facts are kept apart from the invoice row because they may
arrive first (topics are not ordered among themselves); the domain derives from them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from uuid import UUID

from sqlalchemy import (
    BigInteger, Boolean, Date, DateTime, Identity, Index, Integer, Numeric, String, Text, cast, func, literal_column, null,
    select, union_all,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_contracts import InvoiceReceived, InvoiceSummary
from parcours_dunning.domain.facts import InvoiceFacts, Signal
from parcours_dunning.store.base import Base, among

InvoiceKey = tuple[str, UUID]


class Invoice(Base):
    __tablename__ = "invoices"
    # customer_ref leads: with tenant_id first, generic plans of a primary-key lookup on a table
    # not yet analysed used this index on tenant_id alone and read the whole tenant per lookup
    __table_args__ = (Index("ix_invoices_customer_ref", "customer_ref", "tenant_id", "due_date"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), primary_key=True)
    correlation_id: Mapped[str] = mapped_column(String(128))
    number: Mapped[str] = mapped_column(String(64))
    customer_ref: Mapped[str] = mapped_column(Text)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    total_excl_tax: Mapped[Decimal] = mapped_column(Numeric)
    total_tax: Mapped[Decimal] = mapped_column(Numeric)
    total_incl_tax: Mapped[Decimal] = mapped_column(Numeric)
    strategy: Mapped[str] = mapped_column(String(64), doc="The strategy id, fixed when the invoice was planned.")
    strategy_version: Mapped[int] = mapped_column(Integer, server_default="1")
    summary: Mapped[dict] = mapped_column(JSONB, doc="The InvoiceSummary as received, re-emitted in every ReminderDue.")
    custom_steps: Mapped[list] = mapped_column(JSONB, server_default="[]", doc="This invoice's own extra steps.")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def key(self) -> InvoiceKey:
        return (self.tenant_id, self.invoice_id)

    def invoice_summary(self) -> InvoiceSummary:
        return InvoiceSummary.model_validate(self.summary)


class Evidence(Base):
    """One sign that the customer has the invoice (a partner ack, a click on a tracked link)."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_invoice", "tenant_id", "invoice_id", "observed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(32))
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(200), doc="ack id or dispatch id")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DispatchOutcome(Base):
    """A channel handed the invoice (or a reminder) over, or failed to."""

    __tablename__ = "dispatch_outcomes"
    __table_args__ = (Index("ix_dispatch_outcomes_invoice", "tenant_id", "invoice_id", "occurred_at"),)

    event_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    dispatch_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    channel: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    reminder_step: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), doc="dispatched | failed | bounced")
    permanent: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InvoiceSignal(Base):
    """A fact of the invoice's life that is neither receipt evidence nor a dispatch outcome:
    a lifecycle status, a payment, a promise, an operator's pause, resume or exclusion."""

    __tablename__ = "invoice_signals"
    __table_args__ = (Index("ix_invoice_signals_invoice", "tenant_id", "invoice_id", "at"),)

    event_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def signal(*, event_id: UUID, tenant_id: str, invoice_id: UUID, kind: str, at: datetime, **data) -> dict:
    """An invoice_signals row: one fact of the invoice's life (the data that is not None)."""
    return dict(event_id=event_id, tenant_id=tenant_id, invoice_id=invoice_id, kind=kind, at=at,
                data={k: v for k, v in data.items() if v is not None})


async def add_facts(session: AsyncSession, table: type[Base], rows: list[dict]) -> set[UUID]:
    """Record facts (evidence, dispatch outcomes, signals) once per event, whether or not their
    invoice is known yet: one statement executed for all rows. The event ids recorded now (not
    those recorded before, nor an id's second row here)."""
    if not rows:
        return set()
    columns = table.__table__.c
    recorded = await session.execute(insert(table.__table__).on_conflict_do_nothing().returning(columns.event_id), rows)
    return set(recorded.scalars())


async def add_invoices(session: AsyncSession, received: list[tuple[InvoiceReceived, str, int]]) -> set[InvoiceKey]:
    """Store received invoices with the (strategy, version) each follows; the keys of those that were
    not known yet (an invoice's first reception wins)."""
    rows = [dict(tenant_id=event.tenant_id, invoice_id=event.invoice_id, correlation_id=event.correlation_id,
                 number=summary.number, customer_ref=summary.customer_ref, issue_date=summary.issue_date,
                 due_date=summary.due_date, currency=summary.currency, total_excl_tax=summary.total_excl_tax,
                 total_tax=summary.total_tax, total_incl_tax=summary.total_incl_tax, strategy=strategy,
                 strategy_version=version, summary=summary.model_dump(mode="json"))
            for event, strategy, version in received if (summary := event.invoice)]
    if not rows:
        return set()
    table = Invoice.__table__
    inserted = await session.execute(insert(table).on_conflict_do_nothing().returning(table.c.tenant_id,
                                                                                      table.c.invoice_id), rows)
    return {(t, i) for t, i in inserted.all()}


async def get_invoice(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, lock: bool = False) -> Invoice | None:
    """The tenant's invoice, or None (also for another tenant's invoice); `lock`: FOR UPDATE, which
    serialises everything that changes its schedule with the scheduler's passes."""
    return await session.get(Invoice, (tenant_id, invoice_id), with_for_update=lock or None, populate_existing=lock)


class PlainInvoice:
    """An invoice row as plain values, for re-planning (which reads it and never changes it):
    no ORM object, identity map entry or state to build per event."""

    __slots__ = _INVOICE_COLUMNS = tuple(column.key for column in Invoice.__table__.columns)

    def __init__(self, values):
        for name, value in zip(self._INVOICE_COLUMNS, values):
            setattr(self, name, value)

    key = Invoice.key
    invoice_summary = Invoice.invoice_summary


async def lock_invoices(session: AsyncSession, *, keys: list[InvoiceKey],
                        plain: bool = False) -> list[Invoice] | list[PlainInvoice]:
    """These invoices (those known), locked FOR UPDATE in key order, so that two transactions
    locking overlapping sets never wait on each other in a circle (`plain`: as PlainInvoices)."""
    if not keys:
        return []
    wanted = set(keys)
    if plain:
        c = Invoice.__table__.c
        rows = await session.execute(select(*(c[name] for name in PlainInvoice._INVOICE_COLUMNS))
                                     .where(among(c.tenant_id, c.invoice_id, keys))
                                     .order_by(c.tenant_id, c.invoice_id).with_for_update())
        return [invoice for invoice in map(PlainInvoice, rows) if invoice.key in wanted]
    return [invoice for invoice in (await session.scalars(
        select(Invoice).where(among(Invoice.tenant_id, Invoice.invoice_id, keys))
        .order_by(Invoice.tenant_id, Invoice.invoice_id).with_for_update(of=Invoice)
        .execution_options(populate_existing=True))).all() if invoice.key in wanted]


async def signals_of(session: AsyncSession, *, keys: list[InvoiceKey]) -> dict[InvoiceKey, list[Signal]]:
    """Every stored fact of these invoices, as the domain's signals: one statement for the three
    tables (UNION ALL of their common shape), read as plain rows through table columns — no ORM
    objects, nor the ORM's processing per row; a statement per table was three round trips."""
    out: dict[InvoiceKey, list[Signal]] = {key: [] for key in keys}
    if not keys:
        return out
    e, d, g = Evidence.__table__.c, DispatchOutcome.__table__.c, InvoiceSignal.__table__.c
    no_text, no_flag, no_data = cast(null(), Text), cast(null(), Boolean), cast(null(), JSONB)
    # source, tenant, invoice, at, kind, purpose/reference, channel, reason, permanent, data
    query = union_all(
        select(literal_column("0"), e.tenant_id, e.invoice_id, e.observed_at, e.kind, cast(e.reference, Text),
               no_text, no_text, no_flag, no_data).where(among(e.tenant_id, e.invoice_id, keys)),
        select(literal_column("1"), d.tenant_id, d.invoice_id, d.occurred_at, d.outcome, cast(d.purpose, Text),
               cast(d.channel, Text), d.reason, d.permanent, no_data).where(among(d.tenant_id, d.invoice_id, keys)),
        select(literal_column("2"), g.tenant_id, g.invoice_id, g.at, g.kind, no_text, no_text, no_text,
               no_flag, g.data).where(among(g.tenant_id, g.invoice_id, keys)))
    # each table's rows in the order it gave them, the tables in this order (sorted() is stable)
    for source, tenant_id, invoice_id, at, kind, first, channel, reason, permanent, data in sorted(
            await session.execute(query), key=itemgetter(0)):
        if (found := out.get((tenant_id, invoice_id))) is None:
            continue
        if source == 0:
            found.append(Signal(at=at, kind="acked" if kind == "delivery.acked" else "viewed", detail=first or ""))
        elif source == 1:
            if kind == "dispatched":
                found.append(Signal(at=at, kind="dispatched", purpose=first))
            elif permanent is not False:  # a soft bounce or a transient failure may still go through
                what = "bounced" if kind == "bounced" else "failed"
                found.append(Signal(at=at, kind="delivery_failed", purpose=first,
                                    detail=f"{channel} {what}: {reason or ''}".strip()))
        else:
            found.append(Signal(
                at=at, kind=kind, code=data.get("code"), status=data.get("status"),
                open_amount=Decimal(data["open_amount"]) if "open_amount" in data else None,
                fully_paid=bool(data.get("fully_paid")),
                promised_on=date.fromisoformat(data["promised_on"]) if "promised_on" in data else None,
                detail=data.get("detail", "")))
    return out


def facts_from(invoice: Invoice, signals: list[Signal], customer_tags: frozenset[str] = frozenset(),
               timezone: str | None = None) -> InvoiceFacts:
    return InvoiceFacts(issue_date=invoice.issue_date, due_date=invoice.due_date, amount=invoice.total_incl_tax,
                        currency=invoice.currency, customer_tags=customer_tags, signals=tuple(signals),
                        timezone=timezone)

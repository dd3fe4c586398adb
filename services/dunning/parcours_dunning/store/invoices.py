"""What dunning knows of each invoice: its facts from ingest, receipt evidence from the
tracker's events, and dispatch outcomes from channels. Evidence and outcomes are kept apart
from the invoice row because they may arrive first: topics are not ordered among themselves."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Identity, Index, Numeric, String, Text, func, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB, distinct_on, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_contracts import InvoiceReceived, InvoiceSummary
from parcours_dunning.domain.strategy import InvoiceFacts, Receipt
from parcours_dunning.store.base import Base

InvoiceKey = tuple[str, UUID]


class Invoice(Base):
    __tablename__ = "invoices"

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
    strategy: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict] = mapped_column(JSONB, doc="The InvoiceSummary as received, re-emitted in every ReminderDue.")
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
    outcome: Mapped[str] = mapped_column(String(16), doc="dispatched | failed")
    permanent: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


async def add_invoice(session: AsyncSession, *, event: InvoiceReceived, strategy: str) -> bool:
    """Store a received invoice; False if it was already known (its first reception wins)."""
    summary = event.invoice
    inserted = await session.execute(
        insert(Invoice).values(
            tenant_id=event.tenant_id, invoice_id=event.invoice_id, correlation_id=event.correlation_id,
            number=summary.number, customer_ref=summary.customer_ref, issue_date=summary.issue_date,
            due_date=summary.due_date, currency=summary.currency, total_excl_tax=summary.total_excl_tax,
            total_tax=summary.total_tax, total_incl_tax=summary.total_incl_tax, strategy=strategy,
            summary=summary.model_dump(mode="json"),
        ).on_conflict_do_nothing().returning(Invoice.invoice_id)
    )
    return inserted.first() is not None


async def add_evidence(session: AsyncSession, *, event_id: UUID, tenant_id: str, invoice_id: UUID, kind: str,
                       observed_at: datetime, channel: str | None, reference: str | None) -> None:
    """Record one piece of receipt evidence, whether or not the invoice is known yet."""
    await session.execute(
        insert(Evidence).values(event_id=event_id, tenant_id=tenant_id, invoice_id=invoice_id, kind=kind,
                                observed_at=observed_at, channel=channel, reference=reference)
        .on_conflict_do_nothing()
    )


async def add_dispatch_outcome(session: AsyncSession, **values) -> None:
    """Record that a dispatch went out or failed (for later: defer steps while nothing reached the customer)."""
    await session.execute(insert(DispatchOutcome).values(**values).on_conflict_do_nothing())


async def get_invoice(session: AsyncSession, *, tenant_id: str, invoice_id: UUID) -> Invoice | None:
    """The tenant's invoice, or None (also for another tenant's invoice)."""
    return await session.get(Invoice, (tenant_id, invoice_id))


async def first_receipts(session: AsyncSession, *, keys: list[InvoiceKey]) -> dict[InvoiceKey, Receipt]:
    """The earliest receipt evidence of each of these invoices that has any."""
    if not keys:
        return {}
    rows = (await session.execute(
        select(Evidence.tenant_id, Evidence.invoice_id, Evidence.kind, Evidence.observed_at)
        .where(tuple_(Evidence.tenant_id, Evidence.invoice_id).in_(keys))
        .ext(distinct_on(Evidence.tenant_id, Evidence.invoice_id))
        .order_by(Evidence.tenant_id, Evidence.invoice_id, Evidence.observed_at, Evidence.id)
    )).all()
    return {(r.tenant_id, r.invoice_id): Receipt(kind=r.kind, at=r.observed_at) for r in rows}


async def first_dispatched_at(session: AsyncSession, *, tenant_id: str, invoice_id: UUID) -> datetime | None:
    """When a channel first handed the invoice itself (not a reminder) over."""
    return (await session.execute(
        select(func.min(DispatchOutcome.occurred_at)).where(
            DispatchOutcome.tenant_id == tenant_id, DispatchOutcome.invoice_id == invoice_id,
            DispatchOutcome.purpose == "invoice", DispatchOutcome.outcome == "dispatched")
    )).scalar_one()


async def facts_of(session: AsyncSession, invoices: list[Invoice]) -> dict[InvoiceKey, InvoiceFacts]:
    """The facts each strategy step is evaluated against, for a batch of invoices."""
    receipts = await first_receipts(session, keys=[i.key for i in invoices])
    return {i.key: InvoiceFacts(issue_date=i.issue_date, due_date=i.due_date, receipt=receipts.get(i.key))
            for i in invoices}

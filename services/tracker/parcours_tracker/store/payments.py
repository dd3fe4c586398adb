"""Payments reported for an invoice: idempotent by the tenant's payment id, journaled, projected,
published (PaymentRecorded) in the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import PaymentRecorded
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.payments import Earlier, PaymentRefused, PaymentReport, judge
from parcours_tracker.domain.status import Projection
from parcours_tracker.store import journeys
from parcours_tracker.store.models import Invoice, Payment


async def find(session: AsyncSession, *, tenant_id: str, payment_id: str) -> Payment | None:
    return (await session.execute(
        select(Payment).where(Payment.tenant_id == tenant_id, Payment.payment_id == payment_id)
    )).scalar_one_or_none()


async def totals(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID) -> tuple[Decimal, Decimal]:
    """(paid: all payments, transmitted or received; received: the received ones only)."""
    row = (await session.execute(
        select(func.coalesce(func.sum(Payment.amount), 0),
               func.coalesce(func.sum(Payment.amount).filter(Payment.status == "received"), 0))
        .where(Payment.tenant_id == tenant_id, Payment.invoice_id == invoice_id)
    )).one()
    return Decimal(row[0]), Decimal(row[1])


@dataclass(frozen=True)
class Recorded:
    """What recording a payment did. `projection` is None for an identical retry (nothing changed)."""

    event_id: uuid.UUID
    payment_id: str
    open_amount: Decimal
    fully_paid: bool
    duplicate: bool
    status: str
    code: int | None
    projection: Projection | None = None
    entry: journal.Entry | None = None


async def record_payment(uow: UnitOfWork, tracking: journeys.Tracking, *, invoice: Invoice, report: PaymentReport,
                         source: str, now: datetime) -> Recorded:
    """Record `report` against `invoice` (locked by the caller): the payment row, a `payment` journal
    entry, the projection, PaymentRecorded. Raises PaymentRefused; an identical retry changes nothing."""
    if not invoice.summary:
        raise PaymentRefused(409, "The invoice's amount is not known to the tracker yet; retry shortly.",
                             slug="invoice-amount-unknown")
    session, keys = uow.session, dict(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id)
    total, currency = Decimal(invoice.summary["total_incl_tax"]), invoice.summary["currency"]
    paid, received = await totals(session, **keys)
    existing = await find(session, tenant_id=invoice.tenant_id, payment_id=report.payment_id)
    earlier = None if existing is None else Earlier(
        invoice_matches=existing.invoice_id == invoice.invoice_id, amount=existing.amount, currency=existing.currency,
        paid_on=existing.paid_on, reference=existing.reference, status=existing.status)
    verdict = judge(report, total=total, currency=currency, paid=paid, received=received, earlier=earlier)
    if verdict.action == "duplicate":
        return Recorded(event_id=existing.event_id, payment_id=report.payment_id, open_amount=verdict.open_amount,
                        fully_paid=verdict.fully_paid, duplicate=True, status=invoice.status, code=invoice.code)
    entry = journal.Entry(event_id=uuid.uuid4(), kind=journal.PAYMENT, occurred_at=now, detail={
        "payment_id": report.payment_id, "amount": str(report.amount), "currency": currency,
        "paid_on": report.paid_on.isoformat(), "status": report.status, "reference": report.reference,
        "open_amount": str(verdict.open_amount), "fully_paid": verdict.fully_paid,
        "all_received": verdict.received >= total, "source": source})
    if existing is None:
        session.add(Payment(**keys, payment_id=report.payment_id, amount=report.amount, currency=currency,
                            paid_on=report.paid_on, status=report.status, reference=report.reference,
                            event_id=entry.event_id))
    else:
        existing.status, existing.event_id = report.status, entry.event_id
    projection = await journeys.record(uow, tracking, **keys, correlation_id=invoice.correlation_id, entry=entry)
    uow.publish(PaymentRecorded(
        event_id=entry.event_id, **keys, correlation_id=invoice.correlation_id, occurred_at=now,
        payment_id=report.payment_id, amount=report.amount, currency=currency, paid_on=report.paid_on,
        open_amount=verdict.open_amount, fully_paid=verdict.fully_paid, source=source, reference=report.reference,
        status=report.status))
    return Recorded(event_id=entry.event_id, payment_id=report.payment_id, open_amount=verdict.open_amount,
                    fully_paid=verdict.fully_paid, duplicate=False, status=projection.status, code=projection.code,
                    projection=projection, entry=entry)

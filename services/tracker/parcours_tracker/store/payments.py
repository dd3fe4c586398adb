"""Payments reported for an invoice: idempotent by the tenant's payment id."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_tracker.store.models import Payment


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

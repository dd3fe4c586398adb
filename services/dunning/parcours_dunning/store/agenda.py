"""The agenda: the tenant's pending steps that fire in a window, with their invoice, in firing order
(read through the partial index on pending steps' fire_at)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_dunning.store.invoices import Invoice
from parcours_dunning.store.schedule import ScheduledStep


async def pending_between(session: AsyncSession, *, tenant_id: str, start: datetime, end: datetime,
                          limit: int) -> list[tuple[ScheduledStep, Invoice]]:
    query = (select(ScheduledStep, Invoice)
             .join(Invoice, (Invoice.tenant_id == ScheduledStep.tenant_id)
                   & (Invoice.invoice_id == ScheduledStep.invoice_id))
             .where(ScheduledStep.state == "pending", ScheduledStep.fire_at >= start, ScheduledStep.fire_at < end,
                    ScheduledStep.tenant_id == tenant_id)
             .order_by(ScheduledStep.fire_at, ScheduledStep.id).limit(limit))
    return [(step, invoice) for step, invoice in (await session.execute(query)).all()]

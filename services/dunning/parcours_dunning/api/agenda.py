"""The agenda: what dunning will do, day by day (local days of the service's time zone)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from parcours_runtime.tenancy import Tenant, authenticate

from parcours_dunning.store.agenda import pending_between

router = APIRouter(tags=["reminders"])
AGENDA_LIMIT = 2000


class AgendaStepRead(BaseModel):
    invoice_id: UUID
    number: str
    customer_ref: str | None
    amount: Decimal
    currency: str
    strategy: str
    step: str
    action: str
    fire_at: datetime


class AgendaDayRead(BaseModel):
    day: date
    steps: list[AgendaStepRead]


class AgendaRead(BaseModel):
    start: date
    days: int
    truncated: bool
    agenda: list[AgendaDayRead]


@router.get("/v1/agenda", response_model=AgendaRead,
            summary="The pending steps of the next days, day by day (reminders, tasks, stops, hand-overs)")
async def agenda(request: Request, start: date | None = Query(default=None, description="Omitted: today."),
                 days: int = Query(default=14, ge=1, le=92),
                 tenant: Tenant = Depends(authenticate)) -> AgendaRead:
    ctx = request.app.state.ctx
    calendar = ctx.extras["policy"].calendar
    first = start or calendar.local_date(ctx.extras["clock"].now())
    begin = datetime.combine(first, time(0), tzinfo=calendar.tz)
    async with ctx.sessions() as session:
        rows = await pending_between(session, tenant_id=tenant.id, start=begin, end=begin + timedelta(days=days),
                                     limit=AGENDA_LIMIT + 1)
    by_day: dict[date, list[AgendaStepRead]] = {}
    for step, invoice in rows[:AGENDA_LIMIT]:
        by_day.setdefault(step.fire_at.astimezone(calendar.tz).date(), []).append(AgendaStepRead(
            invoice_id=invoice.invoice_id, number=invoice.number, customer_ref=invoice.customer_ref,
            amount=invoice.total_incl_tax, currency=invoice.currency, strategy=step.strategy, step=step.step,
            action=step.action, fire_at=step.fire_at))
    return AgendaRead(start=first, days=days, truncated=len(rows) > AGENDA_LIMIT,
                      agenda=[AgendaDayRead(day=day, steps=steps) for day, steps in sorted(by_day.items())])

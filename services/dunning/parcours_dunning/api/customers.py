"""Per customer: dunning's own settings (time zone of its sending window, grouped reminders)
and the operator's customer-wide pause and resume, which hold every invoice of the customer."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from parcours_runtime.problems import Problem
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork

from parcours_dunning.domain.calendar import known_zone
from parcours_dunning.planning import refresh_many
from parcours_dunning.store.customers import (
    CustomerDunningRead, add_customer_signal, customer_context, invoices_of_customer, put_settings,
)
from parcours_dunning.store.journal import audit

router = APIRouter(tags=["customers"])
_AUDIT_KIND = {"settings": "customer setting", "pause": "customer pause", "resume": "customer resume"}
CustomerRef = Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")


class CustomerDunningWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(default=None, description="IANA zone of the customer's sending window; "
                                                           "null: the directory's, else the service's.")
    group_reminders: bool = Field(default=False, description="One reminder per pass listing all overdue invoices.")

    _known_zone = field_validator("timezone")(lambda cls, value: known_zone(value))


class CustomerHoldWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


async def _read(session, tenant_id: str, customer_ref: str) -> CustomerDunningRead:
    customer = await customer_context(session, tenant_id=tenant_id, customer_ref=customer_ref)
    settings_zone = customer.timezone
    pause = customer.paused
    return CustomerDunningRead(
        customer_ref=customer_ref, timezone=settings_zone, group_reminders=customer.group_reminders,
        paused=pause is not None, paused_since=pause.at if pause else None,
        pause_reason=(pause.detail or None) if pause else None,
        invoices=len(await invoices_of_customer(session, tenant_id=tenant_id, customer_ref=customer_ref)))


@router.get("/v1/customers/{customer_ref}/dunning", response_model=CustomerDunningRead,
            summary="The customer's dunning settings and whether it is paused")
async def get_customer_dunning(request: Request, customer_ref: str = CustomerRef,
                               tenant: Tenant = Depends(authenticate)) -> CustomerDunningRead:
    async with request.app.state.ctx.sessions() as session:
        return await _read(session, tenant.id, customer_ref)


@router.put("/v1/customers/{customer_ref}/dunning", response_model=CustomerDunningRead,
            summary="Set the customer's time zone and grouping; its open invoices are re-planned")
async def put_customer_dunning(body: CustomerDunningWrite, request: Request, customer_ref: str = CustomerRef,
                               tenant: Tenant = Depends(authenticate)) -> CustomerDunningRead:
    return await _change(request, tenant, customer_ref, "settings", body)


@router.post("/v1/customers/{customer_ref}/pause", response_model=CustomerDunningRead,
             summary="Hold every invoice of the customer (and those to come) until it is resumed")
async def pause_customer(request: Request, body: CustomerHoldWrite | None = None, customer_ref: str = CustomerRef,
                         tenant: Tenant = Depends(authenticate)) -> CustomerDunningRead:
    return await _change(request, tenant, customer_ref, "pause", body)


@router.post("/v1/customers/{customer_ref}/resume", response_model=CustomerDunningRead,
             summary="Release the customer-wide pause: steps whose time passed meanwhile fire at the next slot")
async def resume_customer(request: Request, body: CustomerHoldWrite | None = None, customer_ref: str = CustomerRef,
                          tenant: Tenant = Depends(authenticate)) -> CustomerDunningRead:
    return await _change(request, tenant, customer_ref, "resume", body)


async def _change(request: Request, tenant: Tenant, customer_ref: str, kind: Literal["settings", "pause", "resume"],
                  body) -> CustomerDunningRead:
    ctx = request.app.state.ctx
    now = ctx.extras["clock"].now()
    async with UnitOfWork(ctx.sessions) as uow:
        session = uow.session
        if kind == "settings":
            await put_settings(session, tenant_id=tenant.id, customer_ref=customer_ref, timezone=body.timezone,
                               group_reminders=body.group_reminders)
            what = f"customer settings: time zone {body.timezone or 'default'}, grouping {body.group_reminders}"
        else:
            paused = (await customer_context(session, tenant_id=tenant.id, customer_ref=customer_ref)).paused
            if kind == "pause" and paused:
                raise Problem(409, "The customer is already paused.")
            if kind == "resume" and not paused:
                raise Problem(409, "The customer is not paused.")
            reason = body.reason if body and body.reason else ""
            add_customer_signal(session, tenant_id=tenant.id, customer_ref=customer_ref, kind=f"customer_{kind}",
                                at=now, detail=reason)
            what = f"customer {kind}{': ' + reason if reason else ' requested through the API'}"
        await session.flush()
        # under the invoices' locks, as the handlers and the scheduler take them
        keys = await invoices_of_customer(session, tenant_id=tenant.id, customer_ref=customer_ref)
        for tenant_id, invoice_id in keys:
            audit(session, tenant_id=tenant_id, invoice_id=invoice_id, at=now, kind=_AUDIT_KIND[kind], detail=what)
        await refresh_many(session, keys=keys, policy=ctx.extras["policy"], now=now)
        await uow.commit()
    async with ctx.sessions() as session:
        return await _read(session, tenant.id, customer_ref)

"""Per invoice: its reminder plan with the audit log and tasks, and the operator's holds
(pause, resume, exclude); the tenant's open tasks."""

from __future__ import annotations

import uuid
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from parcours_runtime.problems import Problem
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork

from parcours_dunning.domain.strategy import Step
from parcours_dunning.planning import facts_of, refresh, strategy_of
from parcours_dunning.store.invoices import Invoice, InvoiceSignal, add_facts, get_invoice, signal
from parcours_dunning.store.journal import AuditRead, TaskRead, audit, audit_of, tasks_of
from parcours_dunning.store.schedule import ReceiptRead, ReminderPlanRead, ReminderStepRead, steps_of

router = APIRouter(tags=["reminders"])


async def plan_read(session, invoice: Invoice) -> ReminderPlanRead:
    facts = await facts_of(session, invoice)
    rows = await steps_of(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id)
    stop = facts.stop()
    handed_over = any(r.action == "handover" and r.state == "done" for r in rows)
    status = f"stopped: {stop[1]}" if stop else "handed over to collection" if handed_over else (
        "paused" if rows and all(r.state in ("paused", "emitted", "done", "skipped") for r in rows)
        and any(r.state == "paused" for r in rows) else "active")
    receipt = facts.receipt
    return ReminderPlanRead(
        invoice_id=invoice.invoice_id, number=invoice.number, issue_date=invoice.issue_date,
        due_date=invoice.due_date, amount=invoice.total_incl_tax, open_amount=facts.open_amount,
        currency=invoice.currency, strategy=invoice.strategy, strategy_version=invoice.strategy_version,
        status=status, dispatched_at=facts.dispatched_at,
        receipt=ReceiptRead(kind=receipt.kind, at=receipt.at) if receipt else None,
        steps=[ReminderStepRead.of(row) for row in rows],
        tasks=[TaskRead.of(t) for t in await tasks_of(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id)],
        audit=[AuditRead(at=a.at, kind=a.kind, step=a.step, detail=a.detail)
               for a in await audit_of(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id)],
    )


@router.get("/v1/invoices/{invoice_id}/reminders", response_model=ReminderPlanRead,
            summary="The invoice's reminder plan, what became of each step and why, its tasks and audit log")
async def get_reminders(invoice_id: UUID, request: Request, tenant: Tenant = Depends(authenticate)) -> ReminderPlanRead:
    async with request.app.state.ctx.sessions() as session:
        invoice = await get_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id)
        if invoice is None:
            raise Problem(404, f"No invoice {invoice_id} is known to dunning for this tenant.")
        return await plan_read(session, invoice)


class HoldWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


async def _hold(request: Request, tenant: Tenant, invoice_id: UUID, kind: Literal["pause", "resume", "exclude"],
                body: HoldWrite | None) -> ReminderPlanRead:
    ctx = request.app.state.ctx
    now = ctx.extras["clock"].now()
    async with UnitOfWork(ctx.sessions) as uow:
        invoice = await _open_invoice(uow.session, tenant, invoice_id)
        facts = await facts_of(uow.session, invoice)
        paused = any(h.end is None and h.reason.startswith("paused by an operator") for h in facts.holds(
            promise_grace_days=0, promise_resumes_at=ctx.extras["policy"].calendar.window_start, tz=ctx.extras["policy"].calendar.tz))
        if kind == "pause" and paused:
            raise Problem(409, "The invoice is already paused by an operator.")
        if kind == "resume" and not paused:
            raise Problem(409, "The invoice is not paused by an operator.")
        reason = body.reason if body and body.reason else ""
        await add_facts(uow.session, InvoiceSignal, [signal(event_id=uuid.uuid4(), tenant_id=tenant.id,
                                                            invoice_id=invoice_id, kind=kind, at=now, detail=reason)])
        audit(uow.session, tenant_id=tenant.id, invoice_id=invoice_id, at=now, kind=f"operator {kind}",
              detail=reason or f"{kind} requested through the API")
        await refresh(uow.session, tenant_id=tenant.id, invoice_id=invoice_id, policy=ctx.extras["policy"], now=now)
        await uow.commit()
    async with ctx.sessions() as session:
        return await plan_read(session, await get_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id))


@router.post("/v1/invoices/{invoice_id}/pause", response_model=ReminderPlanRead,
             summary="Hold the invoice's pending steps until it is resumed")
async def pause(invoice_id: UUID, request: Request, body: HoldWrite | None = None,
                tenant: Tenant = Depends(authenticate)) -> ReminderPlanRead:
    return await _hold(request, tenant, invoice_id, "pause", body)


@router.post("/v1/invoices/{invoice_id}/resume", response_model=ReminderPlanRead,
             summary="Release an operator's pause: steps whose time passed meanwhile fire at the next slot")
async def resume(invoice_id: UUID, request: Request, body: HoldWrite | None = None,
                 tenant: Tenant = Depends(authenticate)) -> ReminderPlanRead:
    return await _hold(request, tenant, invoice_id, "resume", body)


@router.post("/v1/invoices/{invoice_id}/exclude", response_model=ReminderPlanRead,
             summary="End dunning of the invoice for good: every pending step is skipped")
async def exclude(invoice_id: UUID, request: Request, body: HoldWrite | None = None,
                  tenant: Tenant = Depends(authenticate)) -> ReminderPlanRead:
    return await _hold(request, tenant, invoice_id, "exclude", body)


@router.post("/v1/invoices/{invoice_id}/steps", response_model=ReminderPlanRead, status_code=201,
             summary="Add a step of the invoice's own to the strategy it follows (it stands aside the strategy's line)")
async def add_custom_step(invoice_id: UUID, body: Step, request: Request,
                          tenant: Tenant = Depends(authenticate)) -> ReminderPlanRead:
    async def add(invoice: Invoice, strategy) -> None:
        try:
            strategy.step(body.name)
        except KeyError:
            invoice.custom_steps = [*invoice.custom_steps, body.model_dump(mode="json")]
            return
        raise Problem(409, f"The invoice's strategy already has a step {body.name!r}; choose another name.")
    return await _change_steps(request, tenant, invoice_id, add, f"custom step {body.name} added")


@router.delete("/v1/invoices/{invoice_id}/steps/{step}", response_model=ReminderPlanRead,
               summary="Remove one of the invoice's custom steps (skipped if not decided yet)")
async def remove_custom_step(invoice_id: UUID, step: str, request: Request,
                             tenant: Tenant = Depends(authenticate)) -> ReminderPlanRead:
    async def remove(invoice: Invoice, strategy) -> None:
        kept = [s for s in invoice.custom_steps if s["name"] != step]
        if len(kept) == len(invoice.custom_steps):
            raise Problem(404, f"The invoice has no custom step {step!r}.")
        invoice.custom_steps = kept
    return await _change_steps(request, tenant, invoice_id, remove, f"custom step {step} removed")


async def _change_steps(request: Request, tenant: Tenant, invoice_id: UUID, change, what: str) -> ReminderPlanRead:
    ctx = request.app.state.ctx
    now = ctx.extras["clock"].now()
    async with UnitOfWork(ctx.sessions) as uow:
        invoice = await _open_invoice(uow.session, tenant, invoice_id)
        await change(invoice, await strategy_of(uow.session, invoice))
        audit(uow.session, tenant_id=tenant.id, invoice_id=invoice_id, at=now, kind="operator step", detail=what)
        await uow.session.flush()
        await refresh(uow.session, tenant_id=tenant.id, invoice_id=invoice_id, policy=ctx.extras["policy"], now=now)
        await uow.commit()
    async with ctx.sessions() as session:
        return await plan_read(session, await get_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id))


async def _open_invoice(session, tenant: Tenant, invoice_id: UUID) -> Invoice:
    """The tenant's invoice, locked, whose dunning has not ended (404 / 409 otherwise)."""
    invoice = await get_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id, lock=True)
    if invoice is None:
        raise Problem(404, f"No invoice {invoice_id} is known to dunning for this tenant.")
    if (stop := (await facts_of(session, invoice)).stop()) is not None:
        raise Problem(409, f"Dunning of this invoice has ended ({stop[1]}).")
    return invoice


@router.get("/v1/tasks", response_model=list[TaskRead], tags=["tasks"], summary="The tenant's tasks, by due date")
async def list_tasks(request: Request, state: Literal["open", "done"] | None = Query(default=None),
                     tenant: Tenant = Depends(authenticate)) -> list[TaskRead]:
    async with request.app.state.ctx.sessions() as session:
        return [TaskRead.of(t) for t in await tasks_of(session, tenant_id=tenant.id, state=state)]

"""Incidents (list, assign, resolve) and the operator routes: the clock (time travel) and the receipt sweep."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from parcours_runtime.clock import CLOCK, clock_routes
from parcours_runtime.problems import Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate, require_admin
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain.incidents import KINDS
from parcours_tracker.store import incidents, journeys
from parcours_tracker.store.models import Incident
from parcours_tracker.sweep import SweepResult

router = APIRouter(tags=["incidents"])
admin_router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class IncidentItem(BaseModel):
    incident_id: UUID
    invoice_id: UUID
    kind: str = Field(description="One of: " + ", ".join(KINDS))
    channel: str | None
    status: Literal["open", "resolved"]
    evidence: dict[str, Any]
    suggested_action: str | None
    assignee: str | None
    resolution: str | None
    opened_at: datetime
    resolved_at: datetime | None


class IncidentPage(BaseModel):
    items: list[IncidentItem]
    next_cursor: str | None


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str = Field(min_length=1, max_length=200)


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: str = Field(min_length=1, max_length=2000)


def _item(incident: Incident) -> IncidentItem:
    return IncidentItem.model_validate(incident, from_attributes=True)


@router.get("/v1/incidents", response_model=IncidentPage, summary="The tenant's incidents")
async def list_incidents(
    request: Request,
    tenant: Tenant = Depends(authenticate),
    status: Literal["open", "resolved"] | None = Query(default=None),
    kind: str | None = Query(default=None, description="One of: " + ", ".join(KINDS)),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=20),
) -> IncidentPage:
    """Newest first, filtered by status and kind (keyset pagination)."""
    if kind is not None and kind not in KINDS:
        raise Problem(422, "Unknown kind.", errors=[{**field_error(["kind"], "unknown kind"), "in": "query"}])
    if cursor is not None and not (cursor.isascii() and cursor.isdigit()):
        raise Problem(422, "Invalid cursor.", errors=[{**field_error(["cursor"], "invalid cursor"), "in": "query"}])
    async with request.app.state.ctx.sessions() as session:
        rows = await incidents.list_incidents(session, tenant_id=tenant.id, status=status, kind=kind,
                                              before_seq=int(cursor) if cursor else None, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return IncidentPage(items=[_item(row) for row in rows], next_cursor=str(rows[-1].seq) if more else None)


@router.post("/v1/incidents/{incident_id}/assign", response_model=IncidentItem, summary="Assign an incident")
async def assign_incident(incident_id: UUID, body: AssignBody, request: Request,
                          tenant: Tenant = Depends(authenticate)) -> IncidentItem:
    """Say who handles it (an open or resolved incident; the last assignment wins)."""
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        incident = await incidents.find(uow.session, tenant_id=tenant.id, incident_id=incident_id)
        if incident is None:
            raise Problem(404, "No such incident.")
        incident.assignee = body.assignee
        await uow.commit()
    return _item(incident)


@router.post("/v1/incidents/{incident_id}/resolve", response_model=IncidentItem, summary="Resolve an incident",
             responses={409: {"description": "Already resolved"}})
async def resolve_incident(incident_id: UUID, body: ResolveBody, request: Request,
                           tenant: Tenant = Depends(authenticate)) -> IncidentItem:
    """Settle it by hand (IncidentResolved); a not_received incident settled this way does not come back."""
    ctx = request.app.state.ctx
    async with UnitOfWork(ctx.sessions) as uow:
        incident = await incidents.find(uow.session, tenant_id=tenant.id, incident_id=incident_id)
        if incident is None:
            raise Problem(404, "No such incident.")
        invoice = await journeys.find_invoice(uow.session, tenant_id=tenant.id, invoice_id=incident.invoice_id)
        [resolved] = await incidents.resolve(
            uow, tenant_id=tenant.id, invoice_id=incident.invoice_id, correlation_id=invoice.correlation_id,
            incident_id=incident_id, resolution=body.resolution, now=ctx.extras[CLOCK].now()) or [None]
        if resolved is None:
            raise Problem(409, "This incident is already resolved.", slug="incident-resolved")
        await uow.commit()
    return _item(resolved)


clock_routes(admin_router)


@admin_router.post("/sweep/run", response_model=SweepResult, summary="Run one receipt sweep now")
async def run_sweep(request: Request) -> SweepResult:
    """Every timer due at the clock's instant fires, including those a transaction holds for a moment (waited for)."""
    return await request.app.state.ctx.extras["sweep"].run_once(skip_locked=False)

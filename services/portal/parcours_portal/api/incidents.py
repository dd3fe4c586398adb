"""The incidents queue and what a credit manager does about one: resolve it, note that the customer
was called, send the invoice again, or send it on another channel. Each answer is published on
`portal.actions` (the tracker settles the incident; the router delivers again)."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from parcours_contracts import IncidentResolutionRequested, RedeliveryRequested
from parcours_portal.api.console import console_user
from parcours_portal.api.web import check_form, form_invalid, redirect, refuse, render
from parcours_portal.domain import auth
from parcours_portal.domain.incidents import REDELIVER, action_errors, resolution
from parcours_portal.store import queries
from parcours_portal.store.models import User
from parcours_runtime.uow import UnitOfWork

router = APIRouter(include_in_schema=False)
@router.get("/console/incidents")
async def incidents_page(request: Request, user: User = Depends(console_user),
                         status: Literal["open", "resolved"] = Query(default="open")) -> Response:
    async with request.app.state.ctx.sessions() as db:
        rows = await queries.incidents(db, tenant_id=user.tenant_id, status=status)
        channels = await queries.channel_choices(db, tenant_id=user.tenant_id)
    return render(request, "incidents.html", user=user, rows=rows, status=status, channels=channels,
                  can_resolve=auth.allowed(user.role, "resolve_incident"))


@router.post("/console/incidents/{incident_id}/resolve")
async def resolve_incident(incident_id: uuid.UUID, request: Request, user: User = Depends(console_user),
                           resolution: str = Form(default="", max_length=2000),
                           form_token: str | None = Form(default=None)) -> Response:
    """Asks the tracker (IncidentResolutionRequested) to settle it; the queue shows it pending until it has."""
    return await _act(request, user, incident_id, action="resolve", note=resolution, channel="", token=form_token)


@router.post("/console/incidents/{incident_id}/actions")
async def act_on_incident(incident_id: uuid.UUID, request: Request, user: User = Depends(console_user),
                          action: str = Form(max_length=32), note: str = Form(default="", max_length=1500),
                          channel: str = Form(default="", max_length=64),
                          form_token: str | None = Form(default=None)) -> Response:
    """resolve · called · resend (the customer's channels) · switch_channel (on `channel`)."""
    return await _act(request, user, incident_id, action=action, note=note, channel=channel, token=form_token)


async def _act(request: Request, user: User, incident_id: uuid.UUID, *, action: str, note: str, channel: str,
               token: str | None) -> Response:
    check_form(request, token)
    if not auth.allowed(user.role, "resolve_incident"):
        return refuse(request, 403, "error.forbidden")
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        errors = action_errors(action=action, note=note, channel=channel,
                               channels=await queries.channel_choices(uow.session, tenant_id=user.tenant_id))
        if errors:
            raise form_invalid(request, errors)
        incident = await queries.incident(uow.session, tenant_id=user.tenant_id, incident_id=incident_id)
        if incident is None:
            return refuse(request, 404, "error.not_found")
        if incident.status == "open" and incident.requested_by is None:
            invoice = await queries.invoice(uow.session, tenant_id=user.tenant_id, invoice_id=incident.invoice_id)
            incident.requested_by = user.email
            about = dict(tenant_id=user.tenant_id, invoice_id=incident.invoice_id,
                         correlation_id=invoice.correlation_id)
            if action in REDELIVER:
                uow.publish(RedeliveryRequested(**about, channel=channel if action == "switch_channel" else None,
                                                incident_id=incident_id, actor=user.email))
            uow.publish(IncidentResolutionRequested(
                **about, incident_id=incident_id, action=action, actor=user.email,
                resolution=resolution(action=action, note=note, channel=channel)))
        await uow.commit()
    return redirect("/console/incidents")

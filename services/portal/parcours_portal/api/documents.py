"""The invoice's documents (PDF, and the XML it was received as) for the console and the portal,
read from ingest by claim check with the document-reader token: events never carry documents."""

from __future__ import annotations

import uuid
from typing import Literal

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from parcours_portal.api.console import console_user
from parcours_portal.api.recipient import recipient_session
from parcours_portal.api.web import refuse, settings
from parcours_portal.domain import auth
from parcours_portal.store import queries
from parcours_portal.store.models import User

router = APIRouter(include_in_schema=False)
KINDS = {"pdf": ("pdf", "application/pdf"), "xml": ("source", "application/xml")}


async def _document(request: Request, *, tenant_id: str, invoice_id: uuid.UUID, customer_ref: str | None,
                    kind: str) -> Response:
    s = settings(request)
    async with request.app.state.ctx.sessions() as db:
        invoice = await queries.invoice(db, tenant_id=tenant_id, invoice_id=invoice_id, customer_ref=customer_ref)
    if invoice is None or s.ingest_document_token is None:
        return refuse(request, 404, "error.not_found")
    path, media_type = KINDS[kind]
    try:
        answer = await request.app.state.ctx.http.get(
            f"{s.ingest_url}/v1/invoices/{invoice_id}/{path}", timeout=30,
            headers={"Authorization": f"Bearer {s.ingest_document_token.get_secret_value()}",
                     "X-Parcours-Tenant": tenant_id})
    except httpx.HTTPError:
        return refuse(request, 503, "error.documents_unavailable")
    if answer.status_code != 200:
        return refuse(request, 404 if answer.status_code == 404 else 503, "error.documents_unavailable")
    filename = f"{invoice.number or invoice_id}.{kind}".replace('"', "")
    return Response(answer.content, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store"})


@router.get("/console/invoices/{invoice_id}/document.{kind}")
async def console_document(invoice_id: uuid.UUID, kind: Literal["pdf", "xml"], request: Request,
                           user: User = Depends(console_user)) -> Response:
    return await _document(request, tenant_id=user.tenant_id, invoice_id=invoice_id, customer_ref=None, kind=kind)


@router.get("/portal/invoices/{invoice_id}/document.{kind}")
async def portal_document(invoice_id: uuid.UUID, kind: Literal["pdf", "xml"], request: Request,
                          session: auth.Session | None = Depends(recipient_session)) -> Response:
    if session is None:
        return refuse(request, 401, "portal.link_invalid")
    return await _document(request, tenant_id=session.tenant_id, invoice_id=invoice_id,
                           customer_ref=session.customer_ref, kind=kind)

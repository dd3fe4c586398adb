"""The recipient's portal: entered with the tracked link of the invoice mail (the tracker's token,
verified with the same secrets), scoped to that customer's invoices; each answer becomes a
RecipientActionRequested the tracker records (lifecycle, anomalies) and dunning follows."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import date

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import Response

from parcours_contracts import Attachment as AttachmentRef
from parcours_contracts import RecipientActionRequested
from parcours_portal.api.web import check_form, current_session, redirect, refuse, render, set_session, settings
from parcours_portal.domain import auth
from parcours_portal.domain.answers import ANSWERS, answer_errors, sniff_type
from parcours_portal.store import queries, readmodel
from parcours_portal.store.models import Attachment
from parcours_runtime.links import InvalidToken, verify_link_token
from parcours_runtime.problems import Problem
from parcours_runtime.uow import UnitOfWork

router = APIRouter(include_in_schema=False)


def recipient_session(request: Request) -> auth.Session | None:
    session = current_session(request)
    return session if session is not None and session.kind == auth.RECIPIENT else None


@router.get("/p/{token}")
async def enter(token: str, request: Request) -> Response:
    """The mail's tracked link, opened on the portal: a session for that recipient and customer."""
    try:
        claims = verify_link_token(settings(request).link_secrets, token)
    except InvalidToken:
        return refuse(request, 404, "portal.link_invalid")
    async with request.app.state.ctx.sessions() as db:
        invoice = await queries.invoice(db, tenant_id=claims.tenant_id, invoice_id=claims.invoice_id)
    if invoice is None or invoice.customer_ref is None:
        return refuse(request, 404, "portal.not_ready")
    response = redirect(f"/portal/invoices/{invoice.invoice_id}")
    set_session(response, request, auth.Session(
        kind=auth.RECIPIENT, tenant_id=claims.tenant_id, subject=claims.recipient, customer_ref=invoice.customer_ref,
        expires_at=int(time.time() + settings(request).recipient_session_hours * 3600)))
    return response


@router.get("/portal")
async def portal_home(request: Request) -> Response:
    session = recipient_session(request)
    if session is None:
        return redirect("/portal/sign-in")
    async with request.app.state.ctx.sessions() as db:
        rows = await queries.customer_invoices(db, tenant_id=session.tenant_id, customer_ref=session.customer_ref)
    return render(request, "portal_home.html", session=session, rows=rows)


async def _page(request: Request, session: auth.Session, invoice_id: uuid.UUID, *, status_code: int = 200,
                errors: dict[str, str] | None = None, sent: bool = False) -> Response:
    async with request.app.state.ctx.sessions() as db:
        invoice = await queries.invoice(db, tenant_id=session.tenant_id, invoice_id=invoice_id,
                                        customer_ref=session.customer_ref)
        if invoice is None:
            return refuse(request, 404, "error.not_found")
        answers = await queries.timeline(db, tenant_id=session.tenant_id, invoice_id=invoice_id,
                                         kinds=("action_requested",))
    return render(request, "portal_invoice.html", status_code=status_code, session=session, invoice=invoice,
                  answers=answers, errors=errors or {}, sent=sent, today=date.today(),
                  documents=settings(request).ingest_document_token is not None)


@router.get("/portal/invoices/{invoice_id}")
async def portal_invoice(invoice_id: uuid.UUID, request: Request, sent: bool = False) -> Response:
    session = recipient_session(request)
    if session is None:
        return refuse(request, 401, "portal.link_invalid")
    return await _page(request, session, invoice_id, sent=sent)


@router.post("/portal/invoices/{invoice_id}/answer")
async def answer(invoice_id: uuid.UUID, request: Request, action: str = Form(max_length=32),
                 reason: str = Form(default="", max_length=2000), promised_on: str = Form(default="", max_length=10),
                 attachment: UploadFile | None = None, form_token: str | None = Form(default=None)) -> Response:
    session = recipient_session(request)
    if session is None:
        return refuse(request, 401, "portal.link_invalid")
    check_form(request, form_token)
    limit = settings(request).max_attachment_bytes
    data = await attachment.read(limit + 1) if attachment is not None and attachment.filename else b""
    errors, promised = answer_errors(action=action, reason=reason, promised_on=promised_on, attachment=data,
                                     max_bytes=limit, today=date.today())
    if errors:
        if "text/html" not in request.headers.get("accept", ""):
            raise Problem(422, "The answer does not match what is expected.",
                          errors=[{"pointer": f"/{k}", "detail": v, "code": "invalid"} for k, v in errors.items()])
        return await _page(request, session, invoice_id, status_code=422, errors=errors)
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        invoice = await queries.invoice(uow.session, tenant_id=session.tenant_id, invoice_id=invoice_id,
                                        customer_ref=session.customer_ref)
        if invoice is None:
            return refuse(request, 404, "error.not_found")
        ref = None
        if data:
            stored = Attachment(id=uuid.uuid4(), tenant_id=session.tenant_id, invoice_id=invoice_id,
                                filename=(attachment.filename or "attachment")[-200:], content_type=sniff_type(data),
                                sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_by=session.subject)
            uow.session.add(stored)
            ref = AttachmentRef(filename=stored.filename, content_type=stored.content_type, size=len(data),
                                sha256=stored.sha256)
        event = RecipientActionRequested(
            tenant_id=session.tenant_id, invoice_id=invoice_id, correlation_id=invoice.correlation_id,
            kind=ANSWERS[action], reason=reason.strip() or None, promised_on=promised, actor=session.subject,
            attachment=ref)
        detail = event.model_dump(mode="json", include={"kind", "reason", "promised_on", "actor"}, exclude_none=True)
        if ref is not None:
            detail["attachment"] = {"id": str(stored.id), "filename": stored.filename, "sha256": stored.sha256}
        await readmodel.append(uow.session, tenant_id=session.tenant_id, invoice_id=invoice_id,
                               event_id=event.event_id, kind="action_requested", occurred_at=event.occurred_at,
                               detail=detail, correlation_id=invoice.correlation_id)
        uow.publish(event)
        await uow.commit()
    return redirect(f"/portal/invoices/{invoice_id}?sent=true")

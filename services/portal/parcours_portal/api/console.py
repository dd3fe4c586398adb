"""The credit team's console: sign-in, the invoice list with its filters and aging chart, an
invoice's journey with the evidence of each point and where dunning stands, the users (admins)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from parcours_portal.api.web import (COOKIE, LANG_COOKIE, check_form, current_session, redirect, refuse, render, set_session,
                                     settings)
from parcours_portal.domain import auth
from parcours_portal.domain.dso import dso_trend, line
from parcours_portal.domain.i18n import LANGUAGES
from parcours_portal.domain.outlook import aging, bars, delivery_by_channel, dunning_outlook, paid_after_reminder
from parcours_portal.store import queries
from parcours_portal.store.models import Invoice, User
from parcours_runtime.clock import CLOCK
from parcours_runtime.problems import Problem
from parcours_runtime.rate_limit import check_rate
from parcours_runtime.uow import UnitOfWork

router = APIRouter(include_in_schema=False)


class SignIn(Exception):
    """Raised by `console_user` when nobody is signed in: the app redirects to the sign-in page."""

    def __init__(self, next_url: str):
        self.next_url = next_url


async def console_user(request: Request) -> User:
    """FastAPI dependency: the signed-in console user (still enabled), or a redirect to /login."""
    session = current_session(request)
    if session is not None and session.kind == auth.USER:
        async with request.app.state.ctx.sessions() as db:
            user = await queries.user_by_id(db, tenant_id=session.tenant_id, user_id=uuid.UUID(session.subject))
        if user is not None:
            return user
    raise SignIn(request.url.path)


def _today(request: Request) -> date:
    return request.app.state.ctx.extras[CLOCK].now().date()


def _outlook(invoice: Invoice, today: date):
    return dunning_outlook(status=invoice.status, promised_on=invoice.promised_on, due_date=invoice.due_date,
                           last_step=(invoice.last_reminder or {}).get("step"), today=today)


@router.get("/login")
async def login_page(request: Request, next: str = Query(default="/console", max_length=200)) -> Response:
    return render(request, "login.html", next=next if next.startswith("/") and not next.startswith("//") else "/console",
                  oidc=settings(request).oidc_issuer is not None)


@router.post("/login")
async def login(request: Request, email: str = Form(max_length=320), password: str = Form(max_length=200),
                next: str = Form(default="/console", max_length=200)) -> Response:
    check_rate(request, "login-account", email.strip().lower())  # before the hash: a refused guess costs nothing
    async with request.app.state.ctx.sessions() as db:
        user = await queries.user_by_email(db, email)
    ok = await asyncio.to_thread(auth.verify_password, user.password_hash if user and not user.disabled else None,
                                 password)
    if not ok:
        return render(request, "login.html", status_code=401, failed=True, email=email, next="/console")
    return signed_in(request, user, next)


def signed_in(request: Request, user: User, next: str) -> Response:
    """On to `next` (a path of this site) with the user's session cookie."""
    response = redirect(next if next.startswith("/") and not next.startswith("//") else "/console")
    set_session(response, request, auth.Session(kind=auth.USER, tenant_id=user.tenant_id, subject=str(user.id),
                                                expires_at=int(time.time() + settings(request).session_hours * 3600)))
    return response


@router.post("/logout")
async def logout(request: Request, form_token: str | None = Form(default=None)) -> Response:
    check_form(request, form_token)
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
async def home() -> Response:
    return redirect("/console")


@router.get("/console")
async def invoices_page(
    request: Request,
    user: User = Depends(console_user),
    status: str | None = Query(default=None, max_length=64),
    channel: str | None = Query(default=None, max_length=64),
    customer: str | None = Query(default=None, max_length=64),
    group: str | None = Query(default=None, max_length=64),
    due_from: date | None = Query(default=None),
    due_to: date | None = Query(default=None),
    incident: Literal["open", "none"] | None = Query(default=None),
) -> Response:
    filters = queries.InvoiceFilters(status=status or None, channel=channel or None, customer=customer or None,
                                     group=group or None, due_from=due_from, due_to=due_to, incident=incident)
    if due_from and due_to and due_from > due_to:
        raise Problem(422, "due_from is after due_to.",
                      errors=[{"pointer": "/due_from", "detail": "after due_to", "code": "invalid", "in": "query"}])
    today = _today(request)
    async with request.app.state.ctx.sessions() as db:
        rows = await queries.list_invoices(db, tenant_id=user.tenant_id, filters=filters)
        buckets = aging(await queries.aging_rows(db, tenant_id=user.tenant_id, filters=filters), today=today)
        choices = await queries.facets(db, tenant_id=user.tenant_id)
        channels = delivery_by_channel(await queries.delivery_rows(db, tenant_id=user.tenant_id, filters=filters))
        reminded, paid = paid_after_reminder(await queries.reminder_rows(db, tenant_id=user.tenant_id, filters=filters))
        invoiced, payments = await queries.dso_rows(db, tenant_id=user.tenant_id, filters=filters)
    outlooks = {row.invoice_id: _outlook(row, today) for row in rows}
    return render(request, "invoices.html", user=user, rows=rows, filters=filters, choices=choices,
                  bars=bars(buckets), outlooks=outlooks, limit=queries.LIST_LIMIT, channels=channels,
                  reminded=reminded, paid=paid, dso=line(dso_trend(invoiced, payments, today=today)))


@router.get("/console/invoices/{invoice_id}")
async def invoice_page(invoice_id: uuid.UUID, request: Request, user: User = Depends(console_user)) -> Response:
    async with request.app.state.ctx.sessions() as db:
        # One snapshot for the page's reads: a batch committed between them showed a timeline ahead of its invoice.
        await db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        invoice = await queries.invoice(db, tenant_id=user.tenant_id, invoice_id=invoice_id)
        if invoice is None:
            return refuse(request, 404, "invoice.unknown")
        entries = await queries.timeline(db, tenant_id=user.tenant_id, invoice_id=invoice_id)
        incidents = await queries.incidents(db, tenant_id=user.tenant_id, status=None, invoice_id=invoice_id)
        channels = await queries.channel_choices(db, tenant_id=user.tenant_id)
    return render(request, "invoice.html", user=user, invoice=invoice, entries=entries, incidents=incidents,
                  channels=channels,
                  outlook=_outlook(invoice, _today(request)), can_resolve=auth.allowed(user.role, "resolve_incident"),
                  documents=settings(request).ingest_document_token is not None)


@router.post("/lang")
async def choose_language(lang: Literal[LANGUAGES] = Form(),  # type: ignore[valid-type]
                          next: str = Form(default="/", max_length=500)) -> Response:
    response = redirect(next if next.startswith("/") and not next.startswith("//") else "/")
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.get("/console/attachments/{attachment_id}")
async def attachment(attachment_id: uuid.UUID, request: Request, user: User = Depends(console_user)) -> Response:
    """A file a recipient joined to an answer, as a download (never rendered inline)."""
    async with request.app.state.ctx.sessions() as db:
        stored = await queries.attachment(db, tenant_id=user.tenant_id, attachment_id=attachment_id)
    if stored is None:
        return refuse(request, 404, "error.not_found")
    return Response(stored.data, media_type=stored.content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.filename)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@router.get("/console/users")
async def users_page(request: Request, user: User = Depends(console_user)) -> Response:
    if not auth.allowed(user.role, "manage_users"):
        return refuse(request, 403, "error.forbidden")
    async with request.app.state.ctx.sessions() as db:
        rows = await queries.users_of(db, tenant_id=user.tenant_id)
    return render(request, "users.html", user=user, rows=rows, roles=auth.ROLES, errors={})


@router.post("/console/users")
async def add_user(request: Request, user: User = Depends(console_user), email: str = Form(max_length=320),
                   name: str = Form(max_length=200), role: str = Form(max_length=32),
                   password: str = Form(max_length=200), form_token: str | None = Form(default=None)) -> Response:
    """An admin creates a user of their tenant, or sets an existing one's name, role and password."""
    check_form(request, form_token)
    if not auth.allowed(user.role, "manage_users"):
        return refuse(request, 403, "error.forbidden")
    errors = auth.user_errors(email=email, name=name, role=role, password=password)
    if not errors:
        password_hash = await asyncio.to_thread(auth.hash_password, password)
        async with UnitOfWork(request.app.state.ctx.sessions) as uow:
            saved, _ = await queries.put_user(uow.session, tenant_id=user.tenant_id, email=email, name=name.strip(),
                                              role=role, password_hash=password_hash)
            if saved is None:
                errors["email"] = "users.taken"
            else:
                await uow.commit()
    if errors:
        async with request.app.state.ctx.sessions() as db:
            rows = await queries.users_of(db, tenant_id=user.tenant_id)
        return render(request, "users.html", status_code=422, user=user, rows=rows, roles=auth.ROLES, errors=errors)
    return redirect("/console/users")


@router.post("/console/users/{user_id}/{access}")
async def set_access(user_id: uuid.UUID, access: Literal["disable", "enable"], request: Request,
                     user: User = Depends(console_user), form_token: str | None = Form(default=None)) -> Response:
    """An admin disables a user of their tenant (out at their next request) or enables them again; not themselves."""
    check_form(request, form_token)
    if not auth.allowed(user.role, "manage_users") or user_id == user.id:
        return refuse(request, 403, "error.forbidden")
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        if not await queries.set_disabled(uow.session, tenant_id=user.tenant_id, user_id=user_id,
                                          disabled=access == "disable"):
            return refuse(request, 404, "error.not_found")
        await uow.commit()
    return redirect("/console/users")

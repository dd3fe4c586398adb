"""Tracker HTTP API: tracked links and the invoice page, partner acks, invoice journeys."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parcours_contracts import DeliveryAcked, LinkClicked
from parcours_contracts.events import UtcDatetime
from parcours_runtime.links import ExpiredToken, InvalidToken, LinkClaims, verify_link_token
from parcours_runtime.problems import Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.acks import AckRejected, fingerprint, verify_ack
from parcours_tracker.domain.status import STATUSES
from parcours_tracker.store import journeys, proofs
from parcours_tracker.store.models import Invoice

router = APIRouter()

_pages = Environment(loader=PackageLoader("parcours_tracker", "templates"), autoescape=select_autoescape(["html"]))
# The page URL carries the token: keep it out of caches, referrers and search engines.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}
USER_AGENT_MAX = 512


# --- tracked links --------------------------------------------------------------------------

class _LinkRefused(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail


def _claims(request: Request, token: str) -> LinkClaims:
    try:
        return verify_link_token(request.app.state.ctx.settings.link_secrets, token)
    except ExpiredToken:
        raise _LinkRefused(410, "link-expired", "Link expired",
                           "This link has expired. Ask the sender for a new copy of the invoice.") from None
    except InvalidToken:
        raise _LinkRefused(404, "link-not-found", "Link not found", "This link is not valid.") from None


def _refusal(request: Request, refused: _LinkRefused, *, with_body: bool = True) -> Response:
    """An HTML page for a browser, problem+json for anything else; no body for HEAD."""
    if not with_body:
        return Response(status_code=refused.status, headers=_PAGE_HEADERS)
    if "text/html" in request.headers.get("accept", ""):
        page = _pages.get_template("error.html").render(title=refused.title, detail=refused.detail)
        return HTMLResponse(page, status_code=refused.status, headers=_PAGE_HEADERS)
    raise Problem(refused.status, refused.detail, slug=refused.slug, title=refused.title)


@router.head("/l/{token}", include_in_schema=False)
async def probe_link(token: str, request: Request) -> Response:
    """Mail scanners probe links with HEAD: answer like GET would, but it is not a click."""
    try:
        _claims(request, token)
    except _LinkRefused as refused:
        return _refusal(request, refused, with_body=False)
    return RedirectResponse(f"/v/{token}", status_code=303, headers=_PAGE_HEADERS)


@router.get("/l/{token}", status_code=303, summary="Open a tracked link",
            responses={303: {"description": "Click recorded; go to the invoice page"},
                       404: {"description": "Invalid link"}, 410: {"description": "Expired link"}})
async def open_link(token: str, request: Request) -> Response:
    """Record a click on a tracked link (LinkClicked) and redirect to the invoice page."""
    try:
        claims = _claims(request, token)
    except _LinkRefused as refused:
        return _refusal(request, refused)
    ctx = request.app.state.ctx
    user_agent = request.headers.get("user-agent", "")[:USER_AGENT_MAX] or None
    async with UnitOfWork(ctx.sessions) as uow:
        known = await journeys.find_invoice(uow.session, tenant_id=claims.tenant_id, invoice_id=claims.invoice_id)
        try:
            event = LinkClicked(tenant_id=claims.tenant_id, invoice_id=claims.invoice_id,
                                correlation_id=known.correlation_id if known else str(claims.invoice_id),
                                dispatch_id=claims.dispatch_id, recipient=claims.recipient,
                                ip=request.client.host if request.client else None, user_agent=user_agent)
        except ValidationError:  # a signed token with claims our contract refuses: treat as invalid
            return _refusal(request, _LinkRefused(404, "link-not-found", "Link not found", "This link is not valid."))
        await proofs.add_click(uow.session, event=event)
        await journeys.record(uow.session, event=event, entry=journal.clicked(event))
        uow.publish(event)
        await uow.commit()
    return RedirectResponse(f"/v/{token}", status_code=303, headers=_PAGE_HEADERS)


@router.head("/v/{token}", include_in_schema=False)
async def probe_page(token: str, request: Request) -> Response:
    """HEAD of the invoice page: whether the token is good, nothing else."""
    try:
        _claims(request, token)
    except _LinkRefused as refused:
        return _refusal(request, refused, with_body=False)
    return Response(status_code=200, media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/v/{token}", response_class=HTMLResponse, summary="Invoice page",
            responses={404: {"description": "Invalid link"}, 410: {"description": "Expired link"}})
async def invoice_page(token: str, request: Request) -> Response:
    """The invoice a tracked link points to (or 'being prepared' until the tracker knows it)."""
    try:
        claims = _claims(request, token)
    except _LinkRefused as refused:
        return _refusal(request, refused)
    async with request.app.state.ctx.sessions() as session:
        invoice = await journeys.find_invoice(session, tenant_id=claims.tenant_id, invoice_id=claims.invoice_id)
    page = _pages.get_template("invoice.html").render(invoice=invoice.summary if invoice else None)
    return HTMLResponse(page, headers=_PAGE_HEADERS)


# --- partner acks ----------------------------------------------------------------------------

class AckBody(BaseModel):
    """What a partner posts to acknowledge technical receipt of an invoice."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(min_length=1, max_length=64)
    invoice_id: UUID
    ack_id: str = Field(min_length=1, max_length=200, description="The partner's id of this ack; replays reuse it.")
    status: str = Field(default="received", min_length=1, max_length=64)
    acked_at: UtcDatetime | None = Field(default=None, description="When the partner received it; default now.")


def _parse_ack(body: bytes, *, now: datetime, tolerance_seconds: int) -> AckBody:
    try:
        ack = AckBody.model_validate_json(body)
    except ValidationError as exc:
        errors = [field_error(list(err["loc"]), err["msg"], err["type"]) for err in exc.errors()]
        raise Problem(422, "The ack body does not match the expected schema.", errors=errors) from None
    if ack.acked_at is not None and ack.acked_at > now + timedelta(seconds=tolerance_seconds):
        raise Problem(422, "The ack body does not match the expected schema.",
                      errors=[field_error(["acked_at"], "acked_at is in the future", "future")])
    return ack


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"An ack body is at most {limit} bytes.")
    return bytes(body)


@router.post(
    "/v1/acks/{channel}", status_code=202, summary="Partner delivery acknowledgement (signed webhook)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": AckBody.model_json_schema()}}}},
    responses={200: {"description": "Identical redelivery of an ack already taken ({\"duplicate\": true})"},
               401: {"description": "Missing or bad signature, or stale timestamp"},
               404: {"description": "Unknown channel, or invoice unknown for that tenant"},
               409: {"description": "This ack id was already used with a different body"}},
)
async def receive_ack(channel: str, request: Request) -> JSONResponse:
    """Take a partner's signed ack: publish DeliveryAcked once per (channel, ack id)."""
    ctx = request.app.state.ctx
    settings = ctx.settings
    secrets = settings.ack_secrets.get(channel)
    if not secrets:
        raise Problem(404, f"No partner channel named {channel!r} sends acks here.", slug="unknown-ack-channel")
    body = await _read_body(request, settings.ack_max_body_bytes)
    now = datetime.now(timezone.utc)
    try:
        verify_ack(secrets, timestamp=request.headers.get("x-parcours-timestamp"),
                   signature=request.headers.get("x-parcours-signature"), body=body, now=time.time(),
                   tolerance_seconds=settings.ack_tolerance_seconds)
    except AckRejected as exc:
        raise Problem(401, str(exc), slug="ack-signature-invalid") from None
    ack = _parse_ack(body, now=now, tolerance_seconds=settings.ack_tolerance_seconds)
    meaning = fingerprint({"tenant_id": ack.tenant_id, "invoice_id": str(ack.invoice_id), "status": ack.status,
                           "acked_at": ack.acked_at.isoformat() if ack.acked_at else None})

    async with UnitOfWork(ctx.sessions) as uow:
        invoice = await journeys.find_invoice(uow.session, tenant_id=ack.tenant_id, invoice_id=ack.invoice_id)
        if invoice is None:
            raise Problem(404, "This tenant has no such invoice.")
        acked_at = ack.acked_at or now
        event = DeliveryAcked(tenant_id=ack.tenant_id, invoice_id=ack.invoice_id,
                              correlation_id=invoice.correlation_id, occurred_at=acked_at, channel=channel,
                              ack_id=ack.ack_id, status=ack.status, acked_at=acked_at)
        earlier = await proofs.claim_ack(uow.session, channel=channel, ack_id=ack.ack_id, tenant_id=ack.tenant_id,
                                         invoice_id=ack.invoice_id, fingerprint=meaning, event_id=event.event_id)
        if earlier is not None and earlier.fingerprint == meaning:
            return JSONResponse({"duplicate": True, "ack_id": ack.ack_id, "event_id": str(earlier.event_id)})
        if earlier is not None:
            raise Problem(409, f"Ack id {ack.ack_id!r} was already delivered with a different body.",
                          slug="ack-replayed", title="Ack replayed")
        await journeys.record(uow.session, event=event, entry=journal.acked(event))
        uow.publish(event)
        await uow.commit()
    return JSONResponse({"duplicate": False, "ack_id": ack.ack_id, "event_id": str(event.event_id)}, status_code=202)


# --- journeys --------------------------------------------------------------------------------

class JourneyEvent(BaseModel):
    kind: str = Field(description="One of: " + ", ".join(journal.KINDS))
    at: datetime
    event_id: UUID
    detail: dict[str, Any]


class InvoiceItem(BaseModel):
    invoice_id: UUID
    number: str | None = Field(description="Null until the InvoiceReceived (or a dispatch) reached the tracker.")
    customer_ref: str | None
    status: str = Field(description="One of: " + ", ".join(STATUSES))
    status_at: datetime | None
    first_dispatched_at: datetime | None
    acked_at: datetime | None
    viewed_at: datetime | None


class Journey(InvoiceItem):
    events: list[JourneyEvent] = Field(description="Ordered by when each thing happened.")


class InvoicePage(BaseModel):
    items: list[InvoiceItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


def _item(invoice: Invoice) -> dict[str, Any]:
    return dict(invoice_id=invoice.invoice_id, number=invoice.number, customer_ref=invoice.customer_ref,
                status=invoice.status, status_at=invoice.status_at, first_dispatched_at=invoice.first_dispatched_at,
                acked_at=invoice.acked_at, viewed_at=invoice.viewed_at)


@router.get("/v1/invoices/{invoice_id}/journey", response_model=Journey, summary="An invoice's journey")
async def get_journey(invoice_id: UUID, request: Request, tenant: Tenant = Depends(authenticate)) -> Journey:
    """Everything the tracker knows about one of the tenant's invoices, in the order it happened."""
    async with request.app.state.ctx.sessions() as session:
        invoice = await journeys.find_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id)
        if invoice is None:
            raise Problem(404, "No such invoice.")
        entries = await journeys.entries_of(session, tenant_id=tenant.id, invoice_id=invoice_id)
    events = [JourneyEvent(kind=e.kind, at=e.occurred_at, event_id=e.event_id, detail=e.detail) for e in entries]
    return Journey(**_item(invoice), events=events)


@router.get("/v1/invoices", response_model=InvoicePage, summary="The tenant's tracked invoices")
async def list_invoices(
    request: Request,
    tenant: Tenant = Depends(authenticate),
    status: str | None = Query(default=None, description="One of: " + ", ".join(STATUSES)),
    customer: str | None = Query(default=None, max_length=200, description="The tenant's customer reference."),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=20),
) -> InvoicePage:
    """The tenant's invoices, newest first, filtered by status and customer (keyset pagination)."""
    if status is not None and status not in STATUSES:
        raise Problem(422, "Unknown status.", errors=[{**field_error(["status"], "unknown status"), "in": "query"}])
    before = None
    if cursor is not None:
        if not cursor.isascii() or not cursor.isdigit():
            raise Problem(422, "Invalid cursor.", errors=[{**field_error(["cursor"], "invalid cursor"), "in": "query"}])
        before = int(cursor)
    async with request.app.state.ctx.sessions() as session:
        rows = await journeys.list_invoices(session, tenant_id=tenant.id, status=status, customer_ref=customer,
                                            before_seq=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return InvoicePage(items=[InvoiceItem(**_item(row)) for row in rows],
                       next_cursor=str(rows[-1].seq) if more else None)

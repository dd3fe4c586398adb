"""Tracked links and the invoice page: a GET of the link is journaled (opened, or opened by a
machine), the interstitial's button (a POST with a single-use nonce) is the human view."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError

from parcours_contracts import LinkClicked
from parcours_runtime.links import ExpiredToken, InvalidToken, LinkClaims, verify_link_token
from parcours_runtime.plain_routes import path_parameter
from parcours_runtime.problems import Problem
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.clicks import issue_nonce, verify_nonce
from parcours_tracker.opens import OPENS, LinkOpen
from parcours_tracker.store import journeys, proofs

router = APIRouter(tags=["tracked links"])

_pages = Environment(loader=PackageLoader("parcours_tracker", "templates"), autoescape=select_autoescape(["html"]))
# The page URL carries the token: keep it out of caches, referrers and search engines.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
}
# A redirect has no body to sniff, frame or script: what matters is that neither it (its Location carries the
# token) nor the page it leads to is cached, indexed or named in a Referer.
_REDIRECT_HEADERS = {name: _PAGE_HEADERS[name] for name in ("Cache-Control", "Referrer-Policy", "X-Robots-Tag")}
USER_AGENT_MAX = 512


def _to_page(token: str) -> Response:
    """303 to the invoice page. A verified token is base64url and dots: nothing in it to quote."""
    return Response(status_code=303, headers={**_REDIRECT_HEADERS, "Location": f"/v/{token}"})
FORM_MAX_BYTES = 2048

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


def _reader(request: Request) -> dict:
    return dict(ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent", "")[:USER_AGENT_MAX] or None)


# The busiest route of all, one per click: served plainly (parcours_runtime.plain_routes), so it reads its token itself.
@router.get("/l/{token}", summary="Open a tracked link", operation_id="open_link", status_code=303,
            response_class=Response, openapi_extra={"parameters": [
                path_parameter("token", "The signed link token from the invoice's email")]},
            responses={303: {"description": "Open recorded (not yet a view); go to the invoice page"},
                       404: {"description": "Invalid link"}, 410: {"description": "Expired link"}})
async def open_link(request: Request) -> Response:
    """Journal the open (`opened`, or `opened_by_machine` for a scanner; committed with the opens of concurrent
    requests) and redirect to the invoice page. HEAD (mail scanners probe links so) answers the same and journals
    nothing."""
    token = request.path_params["token"]
    try:
        claims = _claims(request, token)
    except _LinkRefused as refused:
        return _refusal(request, refused, with_body=request.method != "HEAD")
    if request.method == "HEAD":
        return _to_page(token)
    sent_at = None if claims.issued_at is None else datetime.fromtimestamp(claims.issued_at, timezone.utc)
    await request.app.state.ctx.extras[OPENS].record(LinkOpen(
        event_id=uuid.uuid4(), tenant_id=claims.tenant_id, invoice_id=claims.invoice_id,
        dispatch_id=claims.dispatch_id, recipient=claims.recipient, at=datetime.now(timezone.utc), sent_at=sent_at,
        **_reader(request)))
    return _to_page(token)


@router.head("/v/{token}", include_in_schema=False)
async def probe_page(token: str, request: Request) -> Response:
    """HEAD of the invoice page: whether the token is good, nothing else."""
    try:
        _claims(request, token)
    except _LinkRefused as refused:
        return _refusal(request, refused, with_body=False)
    return Response(status_code=200, media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/v/{token}", response_class=HTMLResponse, summary="Invoice page (interstitial)",
            responses={404: {"description": "Invalid link"}, 410: {"description": "Expired link"}})
async def invoice_page(token: str, request: Request) -> Response:
    """Which invoice the link is for, and a button to view it (pressing it is the proof of a human view)."""
    try:
        claims = _claims(request, token)
    except _LinkRefused as refused:
        return _refusal(request, refused)
    async with request.app.state.ctx.sessions() as session:
        invoice = await journeys.find_invoice(session, tenant_id=claims.tenant_id, invoice_id=claims.invoice_id)
    nonce = issue_nonce(request.app.state.ctx.settings.link_secrets[0], token=token, now=time.time())
    page = _pages.get_template("open.html").render(invoice=invoice.summary if invoice else None,
                                                   action=f"/v/{token}/open", nonce=nonce)
    return HTMLResponse(page, headers=_PAGE_HEADERS)


async def _form_nonce(request: Request) -> str | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            return None
    values = parse_qs(body.decode("latin-1"), max_num_fields=5).get("nonce", [])
    return values[0] if len(values) == 1 else None


@router.post("/v/{token}/open", response_class=HTMLResponse, summary="View the invoice (a person pressed the button)",
             responses={400: {"description": "Missing, forged or stale page nonce"},
                        404: {"description": "Invalid link"}, 410: {"description": "Expired link"}})
async def view_invoice(token: str, request: Request) -> Response:
    """The human evidence: record the view (LinkClicked, once per page nonce) and show the invoice."""
    try:
        claims = _claims(request, token)
    except _LinkRefused as refused:
        return _refusal(request, refused)
    ctx = request.app.state.ctx
    nonce = await _form_nonce(request)
    if nonce is None or not verify_nonce(ctx.settings.link_secrets, token=token, nonce=nonce, now=time.time()):
        return _refusal(request, _LinkRefused(400, "page-nonce-invalid", "Please open the link again",
                                              "This page is out of date. Open the link from your email again."))
    async with UnitOfWork(ctx.sessions) as uow:
        known = await journeys.find_invoice(uow.session, tenant_id=claims.tenant_id, invoice_id=claims.invoice_id)
        try:
            event = LinkClicked(tenant_id=claims.tenant_id, invoice_id=claims.invoice_id,
                                correlation_id=known.correlation_id if known else str(claims.invoice_id),
                                dispatch_id=claims.dispatch_id, recipient=claims.recipient, **_reader(request))
        except ValidationError:  # a signed token with claims our contract refuses: treat as invalid
            return _refusal(request, _LinkRefused(404, "link-not-found", "Link not found", "This link is not valid."))
        if await proofs.add_click(uow.session, event=event, nonce=nonce):  # a resubmitted page is not a new view
            await journeys.record_event(uow, ctx.extras["tracking"], event=event, entry=journal.clicked(event))
            uow.publish(event)
        await uow.commit()
    portal = ctx.settings.portal_url
    page = _pages.get_template("invoice.html").render(invoice=known.summary if known else None,
                                                      portal_link=f"{portal}/p/{token}" if portal else None)
    return HTMLResponse(page, headers=_PAGE_HEADERS)

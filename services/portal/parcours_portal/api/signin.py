"""Magic-link sign-in for recipients who have no mail at hand: they give their address; if the
tenant sends a customer's invoices there, a mail brings one single-use link per customer. The
answer is the same for any address (nothing to learn from it). Opening the link shows a button:
mail scanners fetch links, only a person presses it."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import time
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from parcours_portal.api.web import language, redirect, refuse, render, set_session, settings
from parcours_portal.domain import auth
from parcours_portal.domain.signin import new_token, sign_in_mail, token_hash
from parcours_portal.store import signin
from parcours_portal.store.models import SignInLink
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _send(s, message) -> None:
    with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
        if s.smtp_starttls:
            smtp.starttls()
        if s.smtp_username and s.smtp_password:
            smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
        smtp.send_message(message)


@router.get("/portal/sign-in")
async def sign_in_page(request: Request) -> Response:
    return render(request, "portal_sign_in.html")


@router.post("/portal/sign-in")
async def sign_in(request: Request, email: str = Form(max_length=320)) -> Response:
    s, address = settings(request), email.strip().lower()
    now = datetime.now(timezone.utc)
    links = []
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        customers = await signin.customers_of(uow.session, address) if "@" in address else []
        if customers and await signin.links_since(uow.session, address, now - timedelta(hours=1)) < s.sign_in_per_hour:
            for tenant_id, customer_ref, name in customers:
                token, digest = new_token()
                uow.session.add(SignInLink(token_hash=digest, tenant_id=tenant_id, customer_ref=customer_ref,
                                           email=address, expires_at=now + timedelta(minutes=s.sign_in_minutes)))
                links.append((name or customer_ref, f"{s.public_url}/portal/magic/{token}"))
            await uow.commit()
    if links:
        message = sign_in_mail(sender=s.mail_from, to=address, links=links, minutes=s.sign_in_minutes,
                               language=language(request))
        try:
            await asyncio.to_thread(_send, s, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("sign-in mail not sent: %r", exc)
    return render(request, "portal_sign_in.html", asked=True)


@router.get("/portal/magic/{token}")
async def magic_page(token: str, request: Request) -> Response:
    async with request.app.state.ctx.sessions() as db:
        live = await signin.is_live(db, token_hash(token[:100]), datetime.now(timezone.utc))
    if not live:
        return refuse(request, 404, "portal.link_invalid")
    return render(request, "portal_magic.html", token=token)


@router.post("/portal/magic/{token}")
async def magic_sign_in(token: str, request: Request) -> Response:
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        link = await signin.consume(uow.session, token_hash(token[:100]), datetime.now(timezone.utc))
        await uow.commit()
    if link is None:
        return refuse(request, 404, "portal.link_invalid")
    response = redirect("/portal")
    set_session(response, request, auth.Session(
        kind=auth.RECIPIENT, tenant_id=link.tenant_id, subject=link.email, customer_ref=link.customer_ref,
        expires_at=int(time.time() + settings(request).recipient_session_hours * 3600)))
    return response

"""Console sign-in with an OpenID Connect provider (authorization code + PKCE): `/login/oidc` sends
the browser to the provider with a state, a nonce and a PKCE challenge kept in a signed cookie for
10 minutes; `/login/oidc/callback` exchanges the code (client secret, PKCE verifier), checks the ID
token and signs in the console user of its verified e-mail — the same session as a password gives.
The provider's discovery document and keys are read once, the keys again for an unknown key id."""

from __future__ import annotations

import hmac
import secrets
import time

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from parcours_portal.api.console import signed_in
from parcours_portal.api.web import refuse, render, settings
from parcours_portal.domain import auth, oidc
from parcours_portal.store import queries

router = APIRouter(include_in_schema=False)
COOKIE = "parcours_oidc"
PATH = "/login/oidc"
PENDING_SECONDS = 600


class ProviderError(Exception):
    """The provider could not be read or refused the code."""


async def _get(request: Request, url: str) -> dict:
    try:
        answer = await request.app.state.ctx.http.get(url, timeout=10)
    except httpx.HTTPError as exc:
        raise ProviderError(str(exc)) from None
    if answer.status_code != 200:
        raise ProviderError(f"{url}: {answer.status_code}")
    return answer.json()


async def _provider(request: Request, *, fresh_keys: bool = False) -> dict:
    cache = request.app.state.ctx.extras.setdefault("oidc", {})
    if "config" not in cache:
        cache["config"] = await _get(request, settings(request).oidc_issuer.rstrip("/")
                                     + "/.well-known/openid-configuration")
    if "jwks" not in cache or fresh_keys:
        cache["jwks"] = await _get(request, cache["config"]["jwks_uri"])
    return cache


def _redirect_uri(request: Request) -> str:
    return f"{settings(request).public_url.rstrip('/')}{PATH}/callback"


@router.get(PATH)
async def start(request: Request, next: str = Query(default="/console", max_length=200)) -> Response:
    s = settings(request)
    if s.oidc_issuer is None:
        return refuse(request, 404, "error.not_found")
    try:
        provider = await _provider(request)
    except ProviderError:
        return refuse(request, 503, "login.oidc_unavailable")
    verifier, challenge = oidc.pkce()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    response = Response(status_code=303, headers={"Cache-Control": "no-store", "Location": oidc.authorization_url(
        provider["config"]["authorization_endpoint"], client_id=s.oidc_client_id,
        redirect_uri=_redirect_uri(request), state=state, nonce=nonce, challenge=challenge)})
    pending = {"state": state, "nonce": nonce, "verifier": verifier, "next": next,
               "expires_at": int(time.time()) + PENDING_SECONDS}
    response.set_cookie(COOKIE, auth.sign_value(s.session_secret, "oidc", pending), max_age=PENDING_SECONDS,
                        httponly=True, samesite="lax", secure=s.secure_cookies, path=PATH)
    return response


@router.get(f"{PATH}/callback")
async def callback(request: Request, code: str = Query(default="", max_length=2000),
                   state: str = Query(default="", max_length=200)) -> Response:
    s = settings(request)
    pending = auth.read_value(s.session_secret, "oidc", request.cookies.get(COOKIE))
    if (s.oidc_issuer is None or pending is None or pending.get("expires_at", 0) < time.time() or not code
            or not hmac.compare_digest(state, str(pending.get("state", "")))):
        return refuse(request, 400, "login.oidc_failed")
    try:
        provider = await _provider(request)
        answer = await request.app.state.ctx.http.post(
            provider["config"]["token_endpoint"], timeout=10,
            auth=(s.oidc_client_id, s.oidc_client_secret.get_secret_value()),
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": _redirect_uri(request),
                  "code_verifier": pending["verifier"]})
        id_token = answer.json().get("id_token") if answer.status_code == 200 else None
        if not isinstance(id_token, str):
            return refuse(request, 401, "login.oidc_failed")
        if oidc.key_id(id_token) not in {key.get("kid") for key in provider["jwks"].get("keys", [])}:
            provider = await _provider(request, fresh_keys=True)  # the provider rotated its keys
        email = oidc.verified_email(id_token, provider["jwks"], issuer=provider["config"]["issuer"],
                                    client_id=s.oidc_client_id, nonce=pending["nonce"])
    except (ProviderError, httpx.HTTPError, ValueError):
        return refuse(request, 503, "login.oidc_unavailable")
    except oidc.InvalidIdToken:
        return refuse(request, 401, "login.oidc_failed")
    async with request.app.state.ctx.sessions() as db:
        user = await queries.user_by_email(db, email)
    if user is None or user.disabled:
        return render(request, "login.html", status_code=403, no_account=True, next="/console", oidc=True)
    response = signed_in(request, user, str(pending.get("next", "/console")))
    response.delete_cookie(COOKIE, path=PATH)
    return response

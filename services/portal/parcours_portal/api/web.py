"""What every page shares: templates in the visitor's language, the signed session cookie, the
form token, and answers for people (HTML) or programs (problem+json)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from parcours_portal.domain import auth
from parcours_portal.domain.i18n import LANGUAGES, pick_language, translator
from parcours_runtime.problems import Problem, field_error

COOKIE = "parcours_session"
LANG_COOKIE = "parcours_lang"
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
                        autoescape=select_autoescape(["html"]))
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def settings(request: Request):
    return request.app.state.ctx.settings


def language(request: Request) -> str:
    return pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def current_session(request: Request) -> auth.Session | None:
    return auth.read_session(settings(request).session_secret, request.cookies.get(COOKIE), now=time.time())


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    lang = language(request)
    cookie = request.cookies.get(COOKIE)
    html = TEMPLATES.get_template(template).render(
        t=translator(lang), lang=lang, languages=LANGUAGES, request=request, path=request.url.path,
        form_token=auth.form_token(settings(request).session_secret, cookie) if cookie else "", **values)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def refuse(request: Request, status: int, key: str) -> Response:
    """A refusal: a page for a browser, problem+json for a program."""
    if wants_html(request):
        return render(request, "error.html", status_code=status, message=translator(language(request))(key))
    raise Problem(status, translator("en")(key))


def form_invalid(request: Request, errors: dict[str, str]) -> Problem:
    """422 with one field error per form field (the page shows them; programs get problem+json)."""
    return Problem(422, "The form does not match what is expected.",
                   errors=[field_error([name], detail) for name, detail in errors.items()])


def check_form(request: Request, token: str | None) -> None:
    if not auth.form_token_ok(settings(request).session_secret, request.cookies.get(COOKIE), token):
        raise Problem(403, "The form token is missing or does not match the session.", slug="form-token")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def set_session(response: Response, request: Request, session: auth.Session) -> None:
    s = settings(request)
    response.set_cookie(COOKIE, auth.sign_session(s.session_secret, session), httponly=True, samesite="lax",
                        secure=s.secure_cookies, max_age=max(int(session.expires_at - time.time()), 1), path="/")

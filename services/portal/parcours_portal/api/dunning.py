"""Dunning from the console: the agenda (what happens per day), an invoice's reminder plan with
pause/resume, and the strategy editor with its simulation preview. Read and written on dunning's
API with its console token, for the session's tenant only (X-Parcours-Tenant): the events carry
what dunning did, not what it plans, and holds and strategies are dunning's own."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response

from parcours_portal.api.console import console_user
from parcours_portal.api.web import check_form, redirect, refuse, render, settings, wants_html
from parcours_portal.domain import auth
from parcours_portal.store import queries
from parcours_portal.store.models import User
from parcours_runtime.clock import CLOCK
from parcours_runtime.problems import Problem, field_error

router = APIRouter(include_in_schema=False)
SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
SAMPLE_STEPS = [
    {"name": "friendly", "anchor": "due_date", "offset_days": 3, "days": "business",
     "conditions": [{"kind": "unpaid"}], "action": {"kind": "reminder", "template": "reminder_gentle"}},
    {"name": "call", "anchor": "due_date", "offset_days": 15, "days": "business",
     "conditions": [{"kind": "unpaid"}], "action": {"kind": "task", "task": "call"}},
]


class Unavailable(Exception):
    """Dunning is not connected (no console token) or did not answer."""

    def __init__(self, status: int):
        self.status = status


async def call(request: Request, tenant_id: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """dunning's API for the session's tenant."""
    s = settings(request)
    if s.dunning_console_token is None:
        raise Unavailable(404)
    try:
        answer = await request.app.state.ctx.http.request(
            method, f"{s.dunning_url}{path}", timeout=15, **kwargs,
            headers={"Authorization": f"Bearer {s.dunning_console_token.get_secret_value()}",
                     "X-Parcours-Tenant": tenant_id})
    except httpx.HTTPError:
        raise Unavailable(503) from None
    if answer.status_code >= 500 or answer.status_code == 401:
        raise Unavailable(503)
    return answer


def unavailable(request: Request, exc: Unavailable) -> Response:
    return refuse(request, exc.status, "dunning.unavailable")


def form_errors(request: Request, errors: list[dict], detail: str, template: str, **values: Any) -> Response:
    """422: the form again with the reasons for a person, problem+json with the pointers for a program."""
    if not wants_html(request):
        raise Problem(422, detail, errors=errors)
    return render(request, template, status_code=422, errors=errors, **values)


def refusal(answer: httpx.Response | None) -> tuple[list[dict], str]:
    """The field errors and detail of dunning's refusal (None: the steps were not JSON at all)."""
    if answer is None:
        return [field_error(["steps"], "not a JSON array")], "The steps are not a JSON array."
    problem = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
    detail = problem.get("detail") or "dunning refused the strategy."
    return problem.get("errors") or [field_error([], detail)], detail


@router.get("/console/agenda")
async def agenda_page(request: Request, user: User = Depends(console_user), start: date | None = Query(default=None),
                      days: int = Query(default=14, ge=1, le=92)) -> Response:
    params = {"days": days} | ({"start": start.isoformat()} if start else {})
    try:
        answer = await call(request, user.tenant_id, "GET", "/v1/agenda", params=params)
    except Unavailable as exc:
        return unavailable(request, exc)
    return render(request, "agenda.html", user=user, agenda=answer.json(), days=days)


@router.get("/console/invoices/{invoice_id}/dunning")
async def plan_page(invoice_id: uuid.UUID, request: Request, user: User = Depends(console_user)) -> Response:
    return await _plan(request, user, invoice_id)


async def _plan(request: Request, user: User, invoice_id: uuid.UUID, *, status_code: int = 200,
                message: str | None = None) -> Response:
    async with request.app.state.ctx.sessions() as db:
        invoice = await queries.invoice(db, tenant_id=user.tenant_id, invoice_id=invoice_id)
    if invoice is None:
        return refuse(request, 404, "invoice.unknown")
    try:
        answer = await call(request, user.tenant_id, "GET", f"/v1/invoices/{invoice_id}/reminders")
    except Unavailable as exc:
        return unavailable(request, exc)
    return render(request, "dunning_plan.html", status_code=status_code, user=user, invoice=invoice,
                  plan=answer.json() if answer.status_code == 200 else None, message=message,
                  can_hold=auth.allowed(user.role, "hold_dunning"))


@router.post("/console/invoices/{invoice_id}/dunning/{hold}")
async def hold(invoice_id: uuid.UUID, hold: Literal["pause", "resume"], request: Request,
               user: User = Depends(console_user), reason: str = Form(default="", max_length=500),
               form_token: str | None = Form(default=None)) -> Response:
    """Pause or resume the invoice's reminders (dunning holds its pending steps; a resumed step whose
    time passed meanwhile fires at the next slot)."""
    check_form(request, form_token)
    if not auth.allowed(user.role, "hold_dunning"):
        return refuse(request, 403, "error.forbidden")
    async with request.app.state.ctx.sessions() as db:
        if await queries.invoice(db, tenant_id=user.tenant_id, invoice_id=invoice_id) is None:
            return refuse(request, 404, "invoice.unknown")
    try:
        answer = await call(request, user.tenant_id, "POST", f"/v1/invoices/{invoice_id}/{hold}",
                            json={"reason": reason.strip() or f"{hold} from the console ({user.email})"})
    except Unavailable as exc:
        return unavailable(request, exc)
    if answer.status_code in (404, 409):
        detail = answer.json().get("detail", "")
        if not wants_html(request):
            raise Problem(answer.status_code, detail)
        return await _plan(request, user, invoice_id, status_code=answer.status_code, message=detail)
    return redirect(f"/console/invoices/{invoice_id}/dunning")


@router.get("/console/strategies")
async def strategies_page(request: Request, user: User = Depends(console_user)) -> Response:
    return await _strategies(request, user)


async def _strategies(request: Request, user: User, *, status_code: int = 200, **form: Any) -> Response:
    try:
        answer = await call(request, user.tenant_id, "GET", "/v1/strategies")
    except Unavailable as exc:
        return unavailable(request, exc)
    values = {"errors": [], "new_id": "", "name": "", "steps": json.dumps(SAMPLE_STEPS, indent=2)} | form
    return render(request, "strategies.html", status_code=status_code, user=user, strategies=answer.json(),
                  can_edit=auth.allowed(user.role, "edit_strategies"), **values)


async def _save(request: Request, user: User, form_token: str | None, path: str, steps: str,
                **fields: Any) -> Response | httpx.Response | None:
    """Check the form and the role, then POST the strategy with its steps to dunning: dunning's answer,
    None when the steps are not a JSON array, or the refusal (a Response)."""
    check_form(request, form_token)
    if not auth.allowed(user.role, "edit_strategies"):
        return refuse(request, 403, "error.forbidden")
    parsed = _steps(steps)
    return None if parsed is None else await call(request, user.tenant_id, "POST", path,
                                                  json=fields | {"steps": parsed})


def _steps(text: str) -> list | None:
    """The steps typed in the editor, if they are a JSON array."""
    try:
        steps = json.loads(text)
    except ValueError:
        return None
    return steps if isinstance(steps, list) else None


@router.post("/console/strategies")
async def create_strategy(request: Request, user: User = Depends(console_user),
                          new_id: str = Form(max_length=64), name: str = Form(max_length=200),
                          steps: str = Form(max_length=50_000), form_token: str | None = Form(default=None)) -> Response:
    try:
        answer = await _save(request, user, form_token, "/v1/strategies", steps, id=new_id.strip(), name=name.strip())
        if isinstance(answer, Response):
            return answer
        if answer is None or answer.status_code != 201:
            errors, detail = refusal(answer)
            listing = (await call(request, user.tenant_id, "GET", "/v1/strategies")).json()
            return form_errors(request, errors, detail, "strategies.html", user=user, strategies=listing,
                               can_edit=True, new_id=new_id, name=name, steps=steps)
    except Unavailable as exc:
        return unavailable(request, exc)
    return redirect(f"/console/strategies/{new_id.strip()}")


@router.get("/console/strategies/{strategy_id}")
async def strategy_page(request: Request, strategy_id: str = Path(pattern=SLUG), user: User = Depends(console_user),
                        issue_date: date | None = Query(default=None), due_date: date | None = Query(default=None),
                        amount: Decimal = Query(default=Decimal("1000.00"), gt=0, le=Decimal("1e12")),
                        version: int | None = Query(default=None, ge=1)) -> Response:
    """The strategy (its steps, editable as a new version) and the dated plan it gives a sample invoice."""
    sample = _sample(request, issue_date, due_date, amount)
    try:
        strategy = await call(request, user.tenant_id, "GET", f"/v1/strategies/{strategy_id}")
        if strategy.status_code == 404:
            return refuse(request, 404, "error.not_found")
        simulation = await call(request, user.tenant_id, "POST", f"/v1/strategies/{strategy_id}/simulate",
                                json={"invoice": sample, "version": version})
    except Unavailable as exc:
        return unavailable(request, exc)
    read = strategy.json()
    return render(request, "strategy.html", user=user, strategy=read, sample=sample, version=version,
                  simulation=simulation.json() if simulation.status_code == 200 else None,
                  simulation_error=None if simulation.status_code == 200 else simulation.json().get("detail"),
                  steps=json.dumps(read["steps"], indent=2, ensure_ascii=False), errors=[],
                  can_edit=auth.allowed(user.role, "edit_strategies") and strategy_id != "default")


def _sample(request: Request, issue_date: date | None, due_date: date | None, amount: Decimal) -> dict[str, str]:
    """The sample invoice of the simulation: issued today and due 30 days later unless said otherwise."""
    issued = issue_date or request.app.state.ctx.extras[CLOCK].now().date()
    return {"issue_date": issued.isoformat(), "due_date": (due_date or issued + timedelta(days=30)).isoformat(),
            "amount": str(amount)}


@router.post("/console/strategies/{strategy_id}/preview")
async def preview(request: Request, strategy_id: str = Path(pattern=SLUG), user: User = Depends(console_user),
                  name: str = Form(max_length=200), steps: str = Form(max_length=50_000),
                  issue_date: date | None = Form(default=None), due_date: date | None = Form(default=None),
                  amount: Decimal = Form(default=Decimal("1000.00"), gt=0, le=Decimal("1e12")),
                  form_token: str | None = Form(default=None)) -> Response:
    """The editor's preview: dunning simulates the steps as edited, before they are saved."""
    check_form(request, form_token)
    if not auth.allowed(user.role, "edit_strategies"):
        return refuse(request, 403, "error.forbidden")
    sample = _sample(request, issue_date, due_date, amount)
    try:
        current = await call(request, user.tenant_id, "GET", f"/v1/strategies/{strategy_id}")
        if current.status_code != 200:
            return refuse(request, 404, "error.not_found")
        parsed = _steps(steps)
        simulation = None if parsed is None else await call(
            request, user.tenant_id, "POST", f"/v1/strategies/{strategy_id}/simulate",
            json={"invoice": sample, "draft": {"name": name.strip(), "steps": parsed}})
    except Unavailable as exc:
        return unavailable(request, exc)
    values = dict(user=user, strategy=current.json() | {"name": name}, sample=sample, version=None, draft=True,
                  steps=steps, can_edit=True, simulation_error=None)
    if simulation is None or simulation.status_code != 200:
        errors, detail = refusal(simulation)
        return form_errors(request, errors, detail, "strategy.html", simulation=None, **values)
    return render(request, "strategy.html", simulation=simulation.json(), errors=[], **values)


@router.post("/console/strategies/{strategy_id}/versions")
async def add_version(request: Request, strategy_id: str = Path(pattern=SLUG), user: User = Depends(console_user),
                      name: str = Form(max_length=200), steps: str = Form(max_length=50_000),
                      form_token: str | None = Form(default=None)) -> Response:
    """A new version of the strategy (invoices already planned keep the version they follow)."""
    try:
        # The editor edits the steps; the strategy's milestones carry over to the new version.
        current = await call(request, user.tenant_id, "GET", f"/v1/strategies/{strategy_id}")
        milestones = current.json().get("milestones", []) if current.status_code == 200 else []
        answer = await _save(request, user, form_token, f"/v1/strategies/{strategy_id}/versions", steps,
                             name=name.strip(), milestones=milestones)
        if isinstance(answer, Response):
            return answer
        if answer is None or answer.status_code != 201:
            current = await call(request, user.tenant_id, "GET", f"/v1/strategies/{strategy_id}")
            if current.status_code != 200:
                return refuse(request, 404, "error.not_found")
            errors, detail = refusal(answer)
            return form_errors(request, errors, detail, "strategy.html", user=user,
                               strategy=current.json() | {"name": name}, sample=None, version=None, simulation=None,
                               simulation_error=None, steps=steps, can_edit=True)
    except Unavailable as exc:
        return unavailable(request, exc)
    return redirect(f"/console/strategies/{strategy_id}")

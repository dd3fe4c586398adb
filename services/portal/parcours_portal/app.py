"""Wiring of the portal: its pages and static files, its read-model handlers, its tables."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from parcours_portal import handlers
from parcours_portal.api import routers
from parcours_portal.api.console import SignIn
from parcours_portal.api.web import redirect
from parcours_portal.store.models import Base
from parcours_runtime.clock import CLOCK, SystemClock
from parcours_runtime.rate_limit import RateLimit
from parcours_runtime.service import BackgroundJob, ServiceContext, ServiceDefinition
from parcours_runtime.table_stats import FirstStatistics
from parcours_runtime.tracing import FASTAPI_TELEMETRY

DESCRIPTION = """The credit team's console (invoices, journeys with their evidence, incidents, where
dunning stands) and the recipient's portal (the customer's invoices; acknowledge, approve, dispute,
promise a date), on the portal's own read model of the events."""


async def on_start(ctx: ServiceContext) -> None:
    ctx.extras[CLOCK] = SystemClock()


def background(ctx: ServiceContext) -> list[BackgroundJob]:
    # Lookups by key fall on tenant-bearing indexes until the tables have statistics: a fresh database gets them early.
    return [FirstStatistics(ctx.engine, ("invoices", "timeline", "incidents"))]


def create_app(ctx: ServiceContext) -> FastAPI:
    app = FastAPI(title="Parcours portal", version="0.1.0", description=DESCRIPTION, telemetry=FASTAPI_TELEMETRY)
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")

    @app.exception_handler(SignIn)
    async def _sign_in(request: Request, exc: SignIn):
        return redirect(f"/login?next={exc.next_url}")

    return app


# Before any sign-in. Sign-ins are strict per address and per account tried (api/console.py checks
# "login-account" on the e-mail), so that guessing a password from many addresses is slow too.
RATE_LIMITS = (
    RateLimit("login", "30/60", ("POST /login", "GET /login/oidc", "GET /login/oidc/callback"),
              "sign-ins from this address"),
    RateLimit("login-account", "10/300", what="sign-ins to this account"),
    RateLimit("magic-link", "10/300", ("POST /portal/sign-in",), "sign-in link requests from this address"),
    RateLimit("recipient", "300/60", ("GET /p/{token}", "GET /portal/magic/{token}", "POST /portal/magic/{token}",
                                      "GET /portal", "GET /portal/invoices/{invoice_id}",
                                      "GET /portal/invoices/{invoice_id}/document.{kind}",
                                      "POST /portal/invoices/{invoice_id}/answer")),
)


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="portal", metadata=Base.metadata, create_app=create_app, handlers=handlers.build,
                             on_start=on_start, background=background, rate_limits=RATE_LIMITS)

"""Wiring of the tracker: the clock and receipt rules, its API, its handlers, the receipt sweep, its tables."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from parcours_contracts import DispatchFailed, DispatchRequested, InvoiceDispatched, InvoiceReceived
from parcours_runtime.plain_routes import serve_plainly
from parcours_runtime.rate_limit import RateLimit
from parcours_runtime.service import BackgroundJob, ServiceContext, ServiceDefinition
from parcours_runtime.table_stats import FirstStatistics
from parcours_tracker import handlers
from parcours_tracker.api import admin_router, plain_endpoints, routers
from parcours_runtime.clock import CLOCK, clock_for
from parcours_tracker.store import gauges
from parcours_tracker.store.journeys import Tracking
from parcours_tracker.opens import OPENS, OpenRecorder
from parcours_tracker.store.models import Base
from parcours_tracker.sweep import ReceiptSweep
from parcours_runtime.tracing import FASTAPI_TELEMETRY

log = logging.getLogger(__name__)

DESCRIPTION = """Keeps each invoice's journey (every event about it, in the order it happened) and its
2026 lifecycle status; proves arrival (tracked links with a human-evidence interstitial, signed
partner acks); takes recipient actions and payments; opens incidents when an invoice was not
received in its channel's window."""


def _holidays(country: str | None):
    if not country:
        return ()
    try:
        import holidays
    except ImportError:  # optional: without it, business days skip weekends only
        log.warning("the holidays package is not installed: business days skip weekends only")
        return ()
    return holidays.country_holidays(country)


async def on_start(ctx: ServiceContext) -> None:
    settings = ctx.settings
    ctx.extras[CLOCK] = clock = clock_for(time_travel=settings.time_travel)
    ctx.extras["tracking"] = Tracking(windows=dict(settings.receipt_windows),
                                      holidays=_holidays(settings.holiday_country), clock=clock)


def background(ctx: ServiceContext) -> list[BackgroundJob]:
    ctx.extras["sweep"] = sweep = ReceiptSweep(ctx)
    ctx.extras[OPENS] = opens = OpenRecorder(ctx)
    # Lookups by key fall on tenant indexes until the tables have statistics: a fresh database gets them early.
    first_statistics = FirstStatistics(ctx.engine, ("invoices", "journal", "receipt_timers", "incidents"))
    return [sweep, opens, first_statistics]


def create_app(ctx: ServiceContext) -> FastAPI:
    # The host's HTTP middleware makes each request's server span: FastAPI's own spans (a second server span, one
    # per dependency, endpoint and serialisation) cost more than a link click's route itself and export nowhere new.
    app = FastAPI(title="Parcours tracker", version="0.2.0", description=DESCRIPTION, telemetry=FASTAPI_TELEMETRY)
    for router in routers:
        app.include_router(router)
    app.include_router(admin_router)  # the sweep may run on demand; only time travel lets the clock move
    serve_plainly(app, *plain_endpoints)
    return app


async def _open_incidents(ctx: ServiceContext) -> dict[str, int]:
    async with ctx.sessions() as session:
        return await gauges.open_incidents(session)


async def _time_to_ack(ctx: ServiceContext) -> dict[str, float]:
    async with ctx.sessions() as session:
        return await gauges.time_to_ack(session)


# What the internet reaches without an API key. A company's NAT opens many links from one address: generous.
RATE_LIMITS = (
    RateLimit("link", "600/60", ("GET /l/{token}", "HEAD /l/{token}", "GET /v/{token}", "HEAD /v/{token}",
                                 "POST /v/{token}/open")),
    RateLimit("partner-ack", "3000/60", ("POST /v1/acks/{channel}",)),
)


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="tracker", metadata=Base.metadata, create_app=create_app, handlers=handlers.build,
                             background=background, on_start=on_start, rate_limits=RATE_LIMITS,
                             # the delivery path, read together so that its facts keep their order; acks, clicks,
                             # reminders and the rest arrive on people's and partners' time
                             urgent=frozenset({InvoiceReceived, DispatchRequested, InvoiceDispatched, DispatchFailed}),
                             gauges={"parcours_incidents_open": ("Open incidents by kind", _open_incidents),
                                     "parcours_time_to_ack_seconds": (
                                         "First dispatch to acknowledgement, invoices acked in the last 24 h, "
                                         "by quantile", _time_to_ack)})

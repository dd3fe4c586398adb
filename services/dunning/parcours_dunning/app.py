"""Wiring: the clock, the scheduler job, the routes and the handlers."""

from __future__ import annotations

from fastapi import FastAPI

from parcours_runtime.service import ServiceContext, ServiceDefinition
from parcours_runtime.service_tokens import tenant_or_service
from parcours_runtime.tenancy import authenticate

from parcours_dunning import handlers
from parcours_dunning.api import admin_router, routers
from parcours_runtime.clock import CLOCK, clock_for
from parcours_dunning.planning import policy_from
from parcours_dunning.scheduler import ReminderScheduler
from parcours_dunning.store import metadata
from parcours_runtime.tracing import FASTAPI_TELEMETRY


async def on_start(ctx: ServiceContext) -> None:
    ctx.extras[CLOCK] = clock_for(time_travel=ctx.settings.time_travel)
    ctx.extras["policy"] = policy_from(ctx.settings)


def background(ctx: ServiceContext) -> list[ReminderScheduler]:
    ctx.extras["scheduler"] = scheduler = ReminderScheduler(ctx)
    return [scheduler]


def create_app(ctx: ServiceContext) -> FastAPI:
    app = FastAPI(
        telemetry=FASTAPI_TELEMETRY,
        title="Parcours dunning",
        version="0.1.0",
        description="Plans each invoice's reminders with a versioned dunning strategy (per customer group, customer "
                    "or invoice), driven by delivery evidence and the invoice's lifecycle, on business days and in "
                    "sending windows; emits `reminder.due` when one falls due, opens tasks, logs every decision. "
                    "With time travel on (never in production), `/v1/admin` moves the clock.",
    )
    # every tenant route also accepts the portal's console token naming the tenant (X-Parcours-Tenant)
    app.dependency_overrides[authenticate] = tenant_or_service("console_token", what="console token")
    for router in routers:
        app.include_router(router)
    if ctx.settings.time_travel:
        app.include_router(admin_router)
    return app


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="dunning", metadata=metadata, create_app=create_app, handlers=handlers.build,
                             background=background, on_start=on_start)

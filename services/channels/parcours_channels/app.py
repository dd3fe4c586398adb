"""Wiring of the channels service."""

from __future__ import annotations

from fastapi import FastAPI

from parcours_channels import api, handlers
from parcours_channels.adapters.deferred import deferred_jobs
from parcours_channels.adapters.mail.smtp import SMTP_POOL, SmtpPool
from parcours_channels.adapters.registry import ADAPTERS, adapter_jobs, load_adapters
from parcours_channels.bounces.server import BOUNCE_ENDPOINT, BounceEndpoint
from parcours_channels.store import Base
from parcours_contracts import DispatchRequested
from parcours_runtime.rate_limit import RateLimit
from parcours_runtime.service import ServiceContext, ServiceDefinition
from parcours_runtime.table_stats import FirstStatistics
from parcours_runtime.tracing import FASTAPI_TELEMETRY


def create_app(ctx: ServiceContext) -> FastAPI:
    app = FastAPI(
        telemetry=FASTAPI_TELEMETRY,
        title="Parcours channels",
        version="0.1.0",
        description="Delivers invoices and reminders through pluggable channel adapters "
                    "(email with a tracked link, email with the PDF) and reports how each delivery went.",
    )
    app.include_router(api.router)
    return app


async def _on_start(ctx: ServiceContext) -> None:
    ctx.extras[ADAPTERS] = load_adapters()
    ctx.extras[SMTP_POOL] = SmtpPool(ctx.settings)
    endpoint = BounceEndpoint(ctx)
    await endpoint.start()
    ctx.extras[BOUNCE_ENDPOINT] = endpoint


async def _on_stop(ctx: ServiceContext) -> None:
    if (pool := ctx.extras.get(SMTP_POOL)) is not None:
        await pool.close()
    if (endpoint := ctx.extras.get(BOUNCE_ENDPOINT)) is not None:
        await endpoint.stop()


# The partners' signed webhooks are reachable without an API key: per sending address.
RATE_LIMITS = (RateLimit("partner-webhook", "3000/60", ("POST /v1/peppol/events", "POST /v1/as2/mdn")),)


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="channels", metadata=Base.metadata, create_app=create_app,
                             handlers=handlers.build, on_start=_on_start, on_stop=_on_stop,
                             background=lambda ctx: [*adapter_jobs(ctx), *deferred_jobs(ctx),
                                                     FirstStatistics(ctx.engine, ("sends",))],
                             rate_limits=RATE_LIMITS, urgent=frozenset({DispatchRequested}))

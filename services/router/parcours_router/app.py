"""Wiring: the router's HTTP API, event handlers and tables, plugged into the runtime host."""

from fastapi import FastAPI

from parcours_contracts import InvoiceReceived
from parcours_router import api, handlers
from parcours_router.store import metadata
from parcours_runtime.service import ServiceContext, ServiceDefinition
from parcours_runtime.tracing import FASTAPI_TELEMETRY


def create_app(ctx: ServiceContext) -> FastAPI:
    app = FastAPI(
        telemetry=FASTAPI_TELEMETRY,
        title="Parcours router",
        version="0.1.0",
        description="The customer directory (contacts and preferred channels, per tenant). "
                    "Invoices and reminders are routed from events, not through this API.",
    )
    app.include_router(api.router)
    return app


def definition() -> ServiceDefinition:
    # A received invoice goes out now; reminders, failures and bounces wait half a second more.
    return ServiceDefinition(name="router", metadata=metadata, create_app=create_app, handlers=handlers.build,
                             urgent=frozenset({InvoiceReceived}))

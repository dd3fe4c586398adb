"""Wiring of the ingest service."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from parcours_runtime.plain_routes import serve_plainly
from parcours_runtime.service import ServiceContext, ServiceDefinition
from parcours_ingest import batch_worker, handlers
from parcours_ingest.api import invoices, routers
from parcours_ingest.domain import schematron
from parcours_ingest.domain.documents import schemas
from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.store import metadata
from parcours_ingest.store.blobs import blob_store_from
from parcours_runtime.tracing import FASTAPI_TELEMETRY

DESCRIPTION = """Ingest takes invoices from ERPs (`POST /v1/invoices`, tenant API key) as JSON, UBL 2.1 or
UN/CEFACT CII XML, Factur-X PDF, or multipart JSON + PDF; checks that they are valid and add up,
stores them and announces each one with an `invoice.received` event. Many at once go to `/v1/batches`:
a JSON array, a CSV or XLSX export read with a column-mapping profile, or a PDF of many invoices split
by a rule and matched to its data, processed in the background with per-item outcomes. It also owns
the tenants and issues their API keys (`/v1/tenants`, admin token)."""


def create_app(ctx: ServiceContext) -> FastAPI:
    app = FastAPI(title="Parcours ingest", version="0.1.0", description=DESCRIPTION,
                  telemetry=FASTAPI_TELEMETRY)
    for router in routers:
        app.include_router(router)
    serve_plainly(app, invoices.receive_invoice)  # the busiest route: one per invoice received
    app.openapi = lambda: _openapi_with_invoice_schema(app)
    return app


def _openapi_with_invoice_schema(app: FastAPI) -> dict[str, Any]:
    """The invoice body is parsed by hand (Decimal numbers, size limit), so add its schema ourselves."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        invoice_schema = Invoice.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in invoice_schema.pop("$defs", {}).items():
            components[name] = definition  # validation-mode schemas: they accept what the read side serves
        components["Invoice"] = invoice_schema
        app.openapi_schema = schema
    return app.openapi_schema


async def compile_schemas(ctx: ServiceContext) -> None:
    """Open the blob store; with `schematron_preload`, compile the XSDs and the schematrons before
    serving. Otherwise each compiles on the first document that needs it (XSDs ≈ 0.15 s, a schematron
    ≈ 0.3 s): a deployment that never receives XML does not carry them (≈ 36 MB of XSDs, ≈ 80 MB of
    Saxon memory per schematron)."""
    ctx.extras["blobs"] = blob_store_from(ctx.settings.blob_store_url)
    if ctx.settings.schematron_preload:
        await asyncio.to_thread(schemas.warm_up)
        if ctx.settings.schematron:
            sheets = ("cii", "ubl", "cii-fr-ctc") if ctx.settings.schematron_fr_ctc else ("cii", "ubl")
            await asyncio.to_thread(schematron.warm_up, sheets)


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="ingest", metadata=metadata, create_app=create_app, handlers=handlers.build,
                             background=batch_worker.background, on_start=compile_schemas)

"""HTTP API of ingest: invoices and batches (tenant API key) and tenant administration (admin token)."""

from parcours_ingest.api import batch_definitions, batches, documents, invoices, tenants

# Included one by one into the app, the busiest first: FastAPI matches a request through every level of
# nested routers (≈ 10 µs a level per request).
routers = (invoices.router, tenants.router, documents.router, batches.router, batch_definitions.router)

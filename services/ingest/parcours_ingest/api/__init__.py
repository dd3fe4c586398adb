"""HTTP API of ingest: invoices and batches (tenant API key) and tenant administration (admin token)."""

from fastapi import APIRouter

from parcours_ingest.api import documents
from parcours_ingest.api import batch_definitions, batches, invoices, tenants

router = APIRouter()
router.include_router(invoices.router)
router.include_router(tenants.router)
router.include_router(documents.router)
router.include_router(batches.router)
router.include_router(batch_definitions.router)

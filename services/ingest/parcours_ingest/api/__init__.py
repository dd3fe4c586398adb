"""HTTP API of ingest: invoices (tenant API key) and tenant administration (admin token)."""

from fastapi import APIRouter

from parcours_ingest.api import documents
from parcours_ingest.api import invoices, tenants

router = APIRouter()
router.include_router(invoices.router)
router.include_router(tenants.router)
router.include_router(documents.router)

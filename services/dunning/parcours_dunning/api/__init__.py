"""HTTP API: invoices' reminder plans and holds, tasks, strategies, assignments and the
simulator (tenant API key); the time-travel admin routes (admin token)."""

from fastapi import APIRouter

from parcours_dunning.api import invoices, strategies
from parcours_dunning.api.admin import admin_router

router = APIRouter()
router.include_router(invoices.router)
router.include_router(strategies.router)

__all__ = ["admin_router", "router"]

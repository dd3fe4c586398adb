"""HTTP API: invoices' reminder plans, holds and custom steps, customers' settings and pauses, tasks, the agenda, strategies, assignments and the
simulator (tenant API key); the time-travel admin routes (admin token)."""

from fastapi import APIRouter

from parcours_dunning.api import agenda, customers, invoices, strategies
from parcours_dunning.api.admin import admin_router

router = APIRouter()
router.include_router(invoices.router)
router.include_router(strategies.router)
router.include_router(customers.router)
router.include_router(agenda.router)

__all__ = ["admin_router", "router"]

"""HTTP API: invoices' reminder plans, holds and custom steps, customers' settings and pauses, tasks, the agenda, strategies, assignments and the
simulator (tenant API key); the time-travel admin routes (admin token)."""

from parcours_dunning.api import agenda, customers, invoices, strategies
from parcours_dunning.api.admin import admin_router

# Included one by one into the app (a level of nested routers costs every request its matching).
routers = (invoices.router, strategies.router, customers.router, agenda.router)

__all__ = ["admin_router", "routers"]

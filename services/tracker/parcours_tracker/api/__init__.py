"""Tracker HTTP API: tracked links and the invoice page, partner acks, journeys and the list,
recipient actions and payments, incidents; operator routes apart (admin token)."""

from fastapi import APIRouter

from parcours_tracker.api import acks, incidents, invoices, links, recipients

router = APIRouter()
for module in (links, acks, invoices, recipients, incidents):
    router.include_router(module.router)

admin_router = incidents.admin_router

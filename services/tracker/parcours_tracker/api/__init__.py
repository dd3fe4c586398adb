"""Tracker HTTP API: tracked links and the invoice page, partner acks, journeys and the list,
recipient actions, payments and bank statements, incidents; operator routes apart (admin token)."""

from fastapi import APIRouter

from parcours_tracker.api import acks, incidents, invoices, links, recipients, statements

router = APIRouter()
for module in (links, acks, invoices, recipients, statements, incidents):
    router.include_router(module.router)

admin_router = incidents.admin_router

"""Tracker HTTP API: tracked links and the invoice page, partner acks, journeys and the list,
recipient actions, payments and bank statements, incidents; operator routes apart (admin token)."""

from parcours_tracker.api import acks, incidents, invoices, links, recipients, statements

# Included one by one into the app, the busiest first: FastAPI matches a request through every level of
# nested routers (≈ 10 µs a level per request, on every tracked-link click).
plain_endpoints = (links.open_link,)  # served ahead of the routers (parcours_runtime.plain_routes)
routers = (links.router, acks.router, invoices.router, recipients.router, statements.router, incidents.router)

admin_router = incidents.admin_router

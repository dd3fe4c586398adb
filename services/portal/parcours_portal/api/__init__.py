"""Portal HTTP: the console's pages, the recipient's portal, operator routes (admin token)."""

from parcours_portal.api import admin, console, documents, recipient

routers = (console.router, recipient.router, documents.router, admin.router)

"""Portal HTTP: the console's pages, the recipient's portal, operator routes (admin token)."""

from parcours_portal.api import admin, console, documents, incidents, recipient, signin

routers = (console.router, incidents.router, recipient.router, signin.router, documents.router, admin.router)

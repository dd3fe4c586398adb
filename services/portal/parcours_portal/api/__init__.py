"""Portal HTTP: the console's pages, the recipient's portal, operator routes (admin token)."""

from parcours_portal.api import admin, console, documents, dunning, incidents, oidc, recipient, signin

routers = (console.router, oidc.router, incidents.router, dunning.router, recipient.router, signin.router, documents.router, admin.router)

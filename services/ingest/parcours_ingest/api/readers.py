"""Who may read an invoice's documents: its tenant (API key), or a Parcours service holding
the document-reader token and naming the tenant (`X-Parcours-Tenant`).

Channels fetch the document they deposit at a partner this way (a claim check: events carry
the invoice summary, never the document). The token reads documents only, of any tenant."""

from __future__ import annotations

import hmac

from fastapi import Request

from parcours_runtime.problems import Problem
from parcours_runtime.tenancy import Tenant, authenticate

TENANT_HEADER = "x-parcours-tenant"


async def authenticate_document_reader(request: Request) -> Tenant:
    """FastAPI dependency: the tenant whose document is read, by its API key or by the reader token."""
    tenant_id = request.headers.get(TENANT_HEADER, "").strip()
    if not tenant_id:
        return await authenticate(request)
    expected = request.app.state.ctx.settings.document_reader_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if expected is None or scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), expected.get_secret_value().encode()):
        raise Problem(401, "Send the document-reader token as `Authorization: Bearer <token>` with X-Parcours-Tenant.",
                      headers={"WWW-Authenticate": "Bearer"})
    return Tenant(id=tenant_id, name=tenant_id)

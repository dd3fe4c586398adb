"""A Parcours service acting for a tenant on another service's API, without holding the tenant's
API key: it sends a token shared between the two services (`Authorization: Bearer <token>`) and
names the tenant (`X-Parcours-Tenant`). The service it calls must trust it with every tenant
(the calling service enforces its own users' tenant); without the header, a tenant API key is
expected as usual. The token is a setting of the called service; unset, no service may."""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

from fastapi import Request

from parcours_runtime.problems import Problem
from parcours_runtime.tenancy import Tenant, authenticate

TENANT_HEADER = "x-parcours-tenant"
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def tenant_or_service(setting: str, *, what: str) -> Callable[[Request], Awaitable[Tenant]]:
    """A FastAPI dependency: the tenant of the API key, or the tenant a service holding the token
    named by the `setting` field of the service's settings acts for. `what` names the token in errors."""

    async def authenticate_tenant_or_service(request: Request) -> Tenant:
        tenant_id = request.headers.get(TENANT_HEADER, "").strip()
        if not tenant_id:
            return await authenticate(request)
        expected = getattr(request.app.state.ctx.settings, setting)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if expected is None or scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), expected.get_secret_value().encode()):
            raise Problem(401, f"Send the {what} as `Authorization: Bearer <token>` with X-Parcours-Tenant.",
                          headers={"WWW-Authenticate": "Bearer"})
        if not TENANT_ID.match(tenant_id):
            raise Problem(400, "X-Parcours-Tenant is not a tenant id.")
        return Tenant(id=tenant_id, name=tenant_id)

    return authenticate_tenant_or_service

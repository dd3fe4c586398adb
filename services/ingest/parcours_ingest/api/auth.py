"""Administration API guard: the admin bearer token from the settings."""

from __future__ import annotations

import hmac

from fastapi import Request

from parcours_runtime.problems import Problem


async def require_admin(request: Request) -> None:
    """FastAPI dependency: `Authorization: Bearer <admin token>` or 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = request.app.state.ctx.settings.admin_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Problem(401, "Send the admin token as `Authorization: Bearer <token>`.",
                      headers={"WWW-Authenticate": "Bearer"})

"""Tenant API keys. Ingest issues them; every service keeps the hashes it learns from
`tenant.events` in its own database and authenticates `Authorization: Bearer <key>`.

Keys are 256-bit random secrets, so a plain SHA-256 is a sufficient hash (no dictionary
to defend against); only the hash is stored or published."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Boolean, Column, DateTime, String, Table, func, select, update
from sqlalchemy.dialects.postgresql import insert

from parcours_contracts import TenantApiKeyIssued, TenantApiKeyRevoked
from parcours_runtime.db import runtime_metadata
from parcours_runtime.problems import Problem
from parcours_runtime.uow import UnitOfWork

api_keys_table = Table(
    "api_keys",
    runtime_metadata,
    Column("key_id", String, primary_key=True),
    Column("key_hash", String, nullable=False, unique=True),
    Column("tenant_id", String, nullable=False, index=True),
    Column("tenant_name", String, nullable=False),
    Column("revoked", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_api_key() -> tuple[str, str]:
    """A new (key_id, key). The key is shown once and never stored."""
    key_id = secrets.token_hex(6)
    return key_id, f"prc_{key_id}_{secrets.token_urlsafe(32)}"


async def on_api_key_issued(event: TenantApiKeyIssued, uow: UnitOfWork) -> None:
    await uow.session.execute(
        insert(api_keys_table).values(key_id=event.key_id, key_hash=event.key_hash, tenant_id=event.tenant_id,
                                      tenant_name=event.tenant_name).on_conflict_do_nothing()
    )


async def on_api_key_revoked(event: TenantApiKeyRevoked, uow: UnitOfWork) -> None:
    await uow.session.execute(update(api_keys_table).where(api_keys_table.c.key_id == event.key_id).values(revoked=True))


TENANCY_HANDLERS = {TenantApiKeyIssued: on_api_key_issued, TenantApiKeyRevoked: on_api_key_revoked}


_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def authenticate(request: Request) -> Tenant:
    """FastAPI dependency: the tenant whose API key is in the Authorization header."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(401, "Send the tenant API key as `Authorization: Bearer <key>`.", headers=_UNAUTHORIZED)
    sessions = request.app.state.ctx.sessions
    async with sessions() as session:
        row = (await session.execute(
            select(api_keys_table.c.tenant_id, api_keys_table.c.tenant_name)
            .where(api_keys_table.c.key_hash == hash_api_key(key.strip()), api_keys_table.c.revoked.is_(False))
        )).first()
    if row is None:
        raise Problem(401, "Unknown or revoked API key.", headers=_UNAUTHORIZED)
    return Tenant(id=row.tenant_id, name=row.tenant_name)


async def require_admin(request: Request) -> None:
    """FastAPI dependency for operator routes: `Authorization: Bearer <settings.admin_token>` or 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = request.app.state.ctx.settings.admin_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Problem(401, "Send the admin token as `Authorization: Bearer <token>`.", headers=_UNAUTHORIZED)

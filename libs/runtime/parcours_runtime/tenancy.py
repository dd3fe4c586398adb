"""Tenant API keys. Ingest issues them; every service keeps the hashes it learns from
`tenant.events` in its own database and authenticates `Authorization: Bearer <key>`.

Keys are 256-bit random secrets, so a plain SHA-256 is a sufficient hash (no dictionary
to defend against); only the hash is stored or published.

Each process remembers the keys it has authenticated for `KEY_CACHE_SECONDS`, so a request
costs no database round trip; a revocation empties the cache entry at once in the process
that revokes and in every process that reads the event, and within the TTL in any case."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from functools import partial

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


KEY_CACHE_SECONDS = 30.0
KEY_CACHE = "api_key_cache"  # key of the ApiKeyCache in ServiceContext.extras


class ApiKeyCache:
    """Authenticated keys by hash, for a bounded time; forgotten on revocation."""

    def __init__(self, ttl_seconds: float = KEY_CACHE_SECONDS, max_entries: int = 10_000):
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, tuple[Tenant, str, float]] = {}  # hash -> (tenant, key id, expiry)

    def get(self, key_hash: str) -> Tenant | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[2] < time.monotonic():
            del self._entries[key_hash]
            return None
        return entry[0]

    def put(self, key_hash: str, tenant: Tenant, key_id: str) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()  # bounded memory beats precision: the next requests refill it
        self._entries[key_hash] = (tenant, key_id, time.monotonic() + self._ttl)

    def forget(self, key_id: str) -> None:
        for key_hash in [h for h, (_, kid, _) in self._entries.items() if kid == key_id]:
            del self._entries[key_hash]


def key_cache(ctx) -> ApiKeyCache:
    """The process's cache (one per service host: tests run several hosts in one process)."""
    return ctx.extras.setdefault(KEY_CACHE, ApiKeyCache())


async def on_api_key_issued(event: TenantApiKeyIssued, uow: UnitOfWork) -> None:
    await uow.session.execute(
        insert(api_keys_table).values(key_id=event.key_id, key_hash=event.key_hash, tenant_id=event.tenant_id,
                                      tenant_name=event.tenant_name).on_conflict_do_nothing()
    )


async def on_api_key_revoked(event: TenantApiKeyRevoked, uow: UnitOfWork, *, cache: ApiKeyCache) -> None:
    await uow.session.execute(update(api_keys_table).where(api_keys_table.c.key_id == event.key_id).values(revoked=True))
    cache.forget(event.key_id)


def tenancy_handlers(ctx) -> dict:
    """The handlers by which every service learns the tenants' keys."""
    return {TenantApiKeyIssued: on_api_key_issued,
            TenantApiKeyRevoked: partial(on_api_key_revoked, cache=key_cache(ctx))}


_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def authenticate(request: Request) -> Tenant:
    """FastAPI dependency: the tenant whose API key is in the Authorization header."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(401, "Send the tenant API key as `Authorization: Bearer <key>`.", headers=_UNAUTHORIZED)
    ctx = request.app.state.ctx
    key_hash = hash_api_key(key.strip())
    cache = key_cache(ctx)
    if (tenant := cache.get(key_hash)) is not None:
        return tenant
    async with ctx.sessions() as session:
        row = (await session.execute(
            select(api_keys_table.c.tenant_id, api_keys_table.c.tenant_name, api_keys_table.c.key_id)
            .where(api_keys_table.c.key_hash == key_hash, api_keys_table.c.revoked.is_(False))
        )).first()
    if row is None:
        raise Problem(401, "Unknown or revoked API key.", headers=_UNAUTHORIZED)
    tenant = Tenant(id=row.tenant_id, name=row.tenant_name)
    cache.put(key_hash, tenant, row.key_id)
    return tenant


async def tenant_of(request: Request) -> Tenant:
    """`authenticate` called by a route itself, as the dependency would be (an app's override of it included):
    for the busiest routes, where FastAPI's dependency solving costs more than the check."""
    return await request.app.dependency_overrides.get(authenticate, authenticate)(request)


async def require_admin(request: Request) -> None:
    """FastAPI dependency for operator routes: `Authorization: Bearer <settings.admin_token>` or 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = request.app.state.ctx.settings.admin_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Problem(401, "Send the admin token as `Authorization: Bearer <token>`.", headers=_UNAUTHORIZED)

"""Queries on tenants and their API keys (the runtime's api_keys table, in this database)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_runtime.tenancy import api_keys_table
from parcours_ingest.store.models import TenantRow


async def add_tenant(session: AsyncSession, *, tenant_id: str, name: str) -> TenantRow:
    """Insert a tenant; raises IntegrityError if the id is taken."""
    row = TenantRow(tenant_id=tenant_id, name=name)
    session.add(row)
    await session.flush()
    return row


async def get_tenant(session: AsyncSession, *, tenant_id: str) -> TenantRow | None:
    """The tenant, or None."""
    return await session.get(TenantRow, tenant_id)


async def add_api_key(session: AsyncSession, *, tenant_id: str, tenant_name: str, key_id: str, key_hash: str) -> None:
    """Store the key's hash so this very instance authenticates it at once (the event tells the others)."""
    await session.execute(api_keys_table.insert().values(key_id=key_id, key_hash=key_hash, tenant_id=tenant_id,
                                                         tenant_name=tenant_name))


async def api_key_state(session: AsyncSession, *, tenant_id: str, key_id: str) -> str | None:
    """"active", "revoked", or None when the tenant has no such key."""
    revoked = (await session.execute(
        select(api_keys_table.c.revoked).where(api_keys_table.c.tenant_id == tenant_id, api_keys_table.c.key_id == key_id)
    )).scalar_one_or_none()
    return None if revoked is None else ("revoked" if revoked else "active")


async def revoke_api_key(session: AsyncSession, *, tenant_id: str, key_id: str) -> None:
    """Mark the tenant's key revoked."""
    await session.execute(update(api_keys_table)
                          .where(api_keys_table.c.tenant_id == tenant_id, api_keys_table.c.key_id == key_id)
                          .values(revoked=True))

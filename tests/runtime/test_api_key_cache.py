"""Services remember authenticated API keys (no database round trip per request) but a
revocation read from `tenant.events` takes effect at once, cache or not."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from parcours_contracts import TenantApiKeyRevoked
from parcours_runtime.tenancy import api_keys_table


async def test_a_revoked_key_stops_working_although_it_was_cached(run_service, tenant_key, publish, eventually):
    router = await run_service("router")
    key = await tenant_key(router)
    async with httpx.AsyncClient(base_url=router.url, headers={"Authorization": f"Bearer {key}"}) as client:
        assert (await client.get("/v1/customers")).status_code == 200
        assert (await client.get("/v1/customers")).status_code == 200  # served from the cache
        key_id = key.split("_")[1]
        await publish(TenantApiKeyRevoked(tenant_id="acme", correlation_id="tenant-acme", key_id=key_id))

        async def revoked_here() -> bool:
            async with router.ctx.sessions() as session:
                return (await session.execute(select(func.count()).select_from(api_keys_table)
                                              .where(api_keys_table.c.key_id == key_id,
                                                     api_keys_table.c.revoked.is_(True)))).scalar_one() == 1

        await eventually(revoked_here, what="the router read the revocation")
        refused = await client.get("/v1/customers")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")

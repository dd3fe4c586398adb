"""`/v1/tenants`: the administration API that creates tenants and issues or revokes their API keys.

A key's hash is written to this database's api_keys table in the same transaction as the
TenantApiKeyIssued event, so this instance accepts the key at once; the other services learn
it from the event (ingest's own consumer then finds the row already there)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.exc import IntegrityError

from parcours_contracts import TenantApiKeyIssued, TenantApiKeyRevoked
from parcours_runtime.problems import PROBLEM_JSON, Problem
from parcours_runtime.tenancy import generate_api_key, hash_api_key, key_cache
from parcours_runtime.uow import UnitOfWork
from parcours_runtime.tenancy import require_admin
from parcours_ingest.api.schemas import IssuedApiKey, TenantCreate
from parcours_ingest.domain.tenants import tenant_id_from_name
from parcours_ingest.store import tenants as store

router = APIRouter(prefix="/v1/tenants", tags=["tenants"], dependencies=[Depends(require_admin)],
                   responses={401: {"content": {PROBLEM_JSON: {}}, "description": "Missing or wrong admin token."}})

_PROBLEM = {"content": {PROBLEM_JSON: {}}}
_GENERATED_ID_ATTEMPTS = 3


def tenant_correlation_id(tenant_id: str) -> str:
    return f"tenant-{tenant_id}"


@router.post("", status_code=201, response_model=IssuedApiKey, summary="Create a tenant and its first API key",
             responses={409: {**_PROBLEM, "description": "The tenant id is taken."}})
async def create_tenant(body: TenantCreate, request: Request) -> IssuedApiKey:
    """Create the tenant and issue its first API key, shown this once."""
    sessions = request.app.state.ctx.sessions
    for _ in range(_GENERATED_ID_ATTEMPTS):
        tenant_id = body.tenant_id or tenant_id_from_name(body.name, suffix=secrets.token_hex(3))
        try:
            async with UnitOfWork(sessions) as uow:
                await store.add_tenant(uow.session, tenant_id=tenant_id, name=body.name)
                issued = await _issue_key(uow, tenant_id=tenant_id, tenant_name=body.name)
                await uow.commit()
            return issued
        except IntegrityError:
            if body.tenant_id is not None:
                raise Problem(409, f"Tenant {tenant_id!r} already exists.", slug="tenant-exists") from None
    raise Problem(409, "Could not generate a free tenant id; retry or choose one.", slug="tenant-exists")


@router.post("/{tenant_id}/api-keys", status_code=201, response_model=IssuedApiKey, summary="Issue another API key",
             responses={404: {**_PROBLEM, "description": "No such tenant."}})
async def issue_api_key(tenant_id: str, request: Request) -> IssuedApiKey:
    """A further key for the tenant (e.g. to rotate keys), shown this once."""
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        tenant = await store.get_tenant(uow.session, tenant_id=tenant_id)
        if tenant is None:
            raise Problem(404, f"No tenant {tenant_id!r}.")
        issued = await _issue_key(uow, tenant_id=tenant.tenant_id, tenant_name=tenant.name)
        await uow.commit()
    return issued


@router.delete("/{tenant_id}/api-keys/{key_id}", status_code=204, summary="Revoke an API key",
               responses={404: {**_PROBLEM, "description": "No such key for this tenant."}})
async def revoke_api_key(tenant_id: str, key_id: str, request: Request) -> Response:
    """The key stops authenticating here at once, and in every service once they read the event."""
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        state = await store.api_key_state(uow.session, tenant_id=tenant_id, key_id=key_id)
        if state is None:
            raise Problem(404, f"No API key {key_id!r} for tenant {tenant_id!r}.")
        if state == "active":
            await store.revoke_api_key(uow.session, tenant_id=tenant_id, key_id=key_id)
            uow.publish(TenantApiKeyRevoked(tenant_id=tenant_id, correlation_id=tenant_correlation_id(tenant_id),
                                            key_id=key_id))
        await uow.commit()
    key_cache(request.app.state.ctx).forget(key_id)
    return Response(status_code=204)


async def _issue_key(uow: UnitOfWork, *, tenant_id: str, tenant_name: str) -> IssuedApiKey:
    """Store the new key's hash and stage TenantApiKeyIssued, in the caller's transaction."""
    key_id, api_key = generate_api_key()
    key_hash = hash_api_key(api_key)
    await store.add_api_key(uow.session, tenant_id=tenant_id, tenant_name=tenant_name, key_id=key_id, key_hash=key_hash)
    uow.publish(TenantApiKeyIssued(tenant_id=tenant_id, correlation_id=tenant_correlation_id(tenant_id), key_id=key_id,
                                   key_hash=key_hash, tenant_name=tenant_name))
    return IssuedApiKey(tenant_id=tenant_id, name=tenant_name, key_id=key_id, api_key=api_key)

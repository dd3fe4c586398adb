"""Tenant administration: creating tenants, issuing and revoking API keys, on a real ingest."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from parcours_contracts import TenantApiKeyIssued, TenantApiKeyRevoked, topics
from parcours_runtime.tenancy import api_keys_table, hash_api_key
from parcours_ingest.domain.tenants import TENANT_ID_PATTERN

ADMIN = {"Authorization": "Bearer dev-admin-token"}
PROBLEM_JSON = "application/problem+json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_new_tenant_key_works_at_once_and_is_announced(ingest, client, make_invoice, read_events):
    created = await client.post("/v1/tenants", json={"name": "Initech SA", "tenant_id": "initech"}, headers=ADMIN)

    assert created.status_code == 201, created.text
    tenant = created.json()
    assert set(tenant) == {"tenant_id", "name", "key_id", "api_key"}
    assert (tenant["tenant_id"], tenant["name"]) == ("initech", "Initech SA")
    # no waiting for the event to come back: this very instance knows the key
    invoice = await client.post("/v1/invoices", json=make_invoice(), headers=bearer(tenant["api_key"]))
    assert invoice.status_code == 202, invoice.text

    async with ingest.ctx.sessions() as session:
        stored = (await session.execute(select(api_keys_table))).one()
    assert (stored.key_id, stored.tenant_id, stored.key_hash) == (tenant["key_id"], "initech", hash_api_key(tenant["api_key"]))

    events = await read_events(topics.TENANT_EVENTS, until=lambda es: any(isinstance(e, TenantApiKeyIssued) for e in es))
    [issued] = events
    assert (issued.tenant_id, issued.key_id, issued.tenant_name, issued.key_hash) == (
        "initech", tenant["key_id"], "Initech SA", hash_api_key(tenant["api_key"]))
    assert tenant["api_key"] not in issued.model_dump_json()

    generated = (await client.post("/v1/tenants", json={"name": "Société Générale d'Essai"}, headers=ADMIN)).json()
    assert re.match(TENANT_ID_PATTERN, generated["tenant_id"]) and generated["tenant_id"].startswith("societe-generale-d-essai-")
    assert (await client.post("/v1/invoices", json=make_invoice(), headers=bearer(generated["api_key"]))).status_code == 202


async def test_tenant_ids_are_unique_and_well_formed(ingest, client, count_rows):
    assert (await client.post("/v1/tenants", json={"name": "Umbrella", "tenant_id": "umbrella"}, headers=ADMIN)).status_code == 201
    taken = await client.post("/v1/tenants", json={"name": "Umbrella bis", "tenant_id": "umbrella"}, headers=ADMIN)
    assert taken.status_code == 409 and taken.headers["content-type"] == PROBLEM_JSON

    for bad in ({"name": "X", "tenant_id": "Has Capitals"}, {"name": "X", "tenant_id": "-dash"}, {"name": ""},
                {"tenant_id": "no-name"}):
        refused = await client.post("/v1/tenants", json=bad, headers=ADMIN)
        assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM_JSON, bad
    assert await count_rows(ingest, api_keys_table) == 1


async def test_the_admin_api_wants_the_admin_token(ingest, client, count_rows):
    tenant = (await client.post("/v1/tenants", json={"name": "Hooli", "tenant_id": "hooli"}, headers=ADMIN)).json()
    wrong_tokens = ({}, {"Authorization": "Bearer dev-admin-tokeN"}, {"Authorization": "dev-admin-token"},
                    bearer(tenant["api_key"]))
    for headers in wrong_tokens:
        for method, path, body in (("POST", "/v1/tenants", {"name": "Intruder"}),
                                   ("POST", "/v1/tenants/hooli/api-keys", None),
                                   ("DELETE", f"/v1/tenants/hooli/api-keys/{tenant['key_id']}", None)):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["content-type"] == PROBLEM_JSON
    assert await count_rows(ingest, api_keys_table) == 1


async def test_revoked_key_is_refused_and_other_keys_keep_working(ingest, client, make_invoice, read_events):
    first = (await client.post("/v1/tenants", json={"name": "Vandelay", "tenant_id": "vandelay"}, headers=ADMIN)).json()
    second = await client.post("/v1/tenants/vandelay/api-keys", headers=ADMIN)
    assert second.status_code == 201
    second = second.json()
    assert second["tenant_id"] == "vandelay" and second["key_id"] != first["key_id"]
    for key in (first["api_key"], second["api_key"]):
        assert (await client.post("/v1/invoices", json=make_invoice(), headers=bearer(key))).status_code == 202

    revoked = await client.delete(f"/v1/tenants/vandelay/api-keys/{first['key_id']}", headers=ADMIN)
    assert revoked.status_code == 204

    refused = await client.post("/v1/invoices", json=make_invoice(), headers=bearer(first["api_key"]))
    assert refused.status_code == 401 and refused.headers["content-type"] == PROBLEM_JSON
    assert (await client.post("/v1/invoices", json=make_invoice(), headers=bearer(second["api_key"]))).status_code == 202

    assert (await client.delete(f"/v1/tenants/vandelay/api-keys/{first['key_id']}", headers=ADMIN)).status_code == 204
    assert (await client.delete("/v1/tenants/vandelay/api-keys/nope", headers=ADMIN)).status_code == 404
    assert (await client.delete(f"/v1/tenants/other/api-keys/{second['key_id']}", headers=ADMIN)).status_code == 404
    assert (await client.post("/v1/tenants/nobody/api-keys", headers=ADMIN)).status_code == 404

    events = await read_events(topics.TENANT_EVENTS,
                               until=lambda es: any(isinstance(e, TenantApiKeyRevoked) for e in es))
    assert [(type(e).__name__, e.key_id) for e in events] == [
        ("TenantApiKeyIssued", first["key_id"]), ("TenantApiKeyIssued", second["key_id"]),
        ("TenantApiKeyRevoked", first["key_id"])]
    # ingest's own consumer reads these events back: the rows it already has absorb them
    for _ in range(200):
        if ingest.consumer_of(TenantApiKeyIssued).processed >= 3:
            break
        await asyncio.sleep(0.05)
    assert ingest.consumer_of(TenantApiKeyIssued).processed >= 3
    async with ingest.ctx.sessions() as session:
        keys = (await session.execute(select(api_keys_table.c.key_id, api_keys_table.c.revoked))).all()
    assert sorted(keys) == sorted([(first["key_id"], True), (second["key_id"], False)])
    refused_again = await client.post("/v1/invoices", json=make_invoice(), headers=bearer(first["api_key"]))
    assert refused_again.status_code == 401

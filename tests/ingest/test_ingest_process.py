"""`python -m parcours_ingest` as a real process: configured from PARCOURS_INGEST_* variables,
serves, and stops gracefully on SIGTERM."""

from __future__ import annotations

import asyncio

import httpx


async def test_the_service_runs_as_a_process(spawn_service):
    ingest = spawn_service("ingest", extra={"ADMIN_TOKEN": "process-admin-token"})
    await asyncio.to_thread(ingest.wait_ready)
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        dev_token = await client.post("/v1/tenants", json={"name": "Pied Piper"},
                                      headers={"Authorization": "Bearer dev-admin-token"})
        assert dev_token.status_code == 401
        created = await client.post("/v1/tenants", json={"name": "Pied Piper"},
                                    headers={"Authorization": "Bearer process-admin-token"})
        assert created.status_code == 201
    assert await asyncio.to_thread(ingest.terminate) == 0

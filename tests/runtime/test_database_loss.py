"""A database connection lost under a service (a PostgreSQL restart, a failover, an idle
timeout) costs one request a 503 problem, not the process: the pool is renewed."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import MetaData, text

from parcours_devstack.ports import free_port
from parcours_runtime.db import asyncpg_dsn, driver_connection
from parcours_runtime.service import ServiceDefinition, ServiceHost
from parcours_runtime.settings import ServiceSettings


def _app(ctx) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/now")
    async def now(request: Request) -> dict:
        async with request.app.state.ctx.sessions() as session:
            return {"now": str((await session.execute(text("SELECT now()"))).scalar_one())}

    @app.get("/v1/now-on-driver")
    async def now_on_driver(request: Request) -> dict:
        async with driver_connection(request.app.state.ctx.engine) as connection, connection.transaction():
            return {"now": str(await connection.fetchval("SELECT now()"))}

    return app


@pytest.mark.parametrize("path", ["/v1/now", "/v1/now-on-driver"], ids=["sqlalchemy", "driver-connection"])
async def test_a_lost_connection_is_a_503_once_then_the_service_carries_on(make_database, kafka, path):
    url = make_database("loss")
    settings = ServiceSettings(environment="test", database_url=url, kafka_bootstrap_servers=kafka,
                               http_port=free_port(), consumer_session_timeout_ms=2000, db_pool_size=1)
    host = ServiceHost(ServiceDefinition(name="loss", metadata=MetaData(), create_app=_app, migrations=None), settings)
    await host.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as client:
            assert (await client.get(path)).status_code == 200  # the pooled connection exists now
            admin = await asyncpg.connect(asyncpg_dsn(url))
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            finally:
                await admin.close()
            assert killed >= 1
            answers = [await client.get(path) for _ in range(3)]
            statuses = [a.status_code for a in answers]
            assert statuses in ([503, 200, 200], [200, 200, 200]), statuses
            if statuses[0] == 503:
                assert answers[0].headers["content-type"].startswith("application/problem+json")
                assert answers[0].headers["retry-after"] == "1"
    finally:
        await host.stop()

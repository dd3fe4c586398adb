"""Every service's Alembic migrations, on a real PostgreSQL: they build exactly the schema its
models describe (the drift test: change a model without a migration and it fails), they are
idempotent, they run as `python -m parcours_<name> migrate`, and replicas may run them together."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import subprocess
import sys

import pytest
from alembic import command, util
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from parcours_devstack.services import SERVICES
from parcours_runtime.db import runtime_metadata
from parcours_runtime.migrations import COMPARE, make_config, upgrade
from parcours_runtime.service import ServiceDefinition


def definition(name: str) -> ServiceDefinition:
    return importlib.import_module(f"parcours_{name}.app").definition()


def heads(service: ServiceDefinition) -> list[str]:
    """What alembic_version holds at head: the service branch's head (which depends on, and so
    stands for, the runtime branch while the runtime has a single revision)."""
    script = ScriptDirectory.from_config(make_config("postgresql+asyncpg://unused/x", service.script_location()))
    covered = {dep for rev in script.walk_revisions() for dep in util.to_tuple(rev.dependencies, default=())}
    return sorted(h for h in script.get_heads() if h not in covered)


async def on_database(url: str, inspection):
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(inspection)
    finally:
        await engine.dispose()


def schema_drift(service: ServiceDefinition):
    def compare(conn):
        context = MigrationContext.configure(conn, opts=COMPARE)
        return compare_metadata(context, [runtime_metadata, service.metadata])
    return compare


def version(conn) -> list[str]:
    return sorted(row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version")))


def tables(conn) -> set[str]:
    return set(inspect(conn).get_table_names())


@pytest.mark.parametrize("name", SERVICES)
async def test_migrations_build_exactly_the_models_schema(make_database, name):
    service = definition(name)
    url = make_database(f"mig_{name}")

    await upgrade(url, service.script_location())

    assert await on_database(url, schema_drift(service)) == [], \
        f"{name}: the models differ from what the migrations build; add a migration (see parcours_runtime.migrations)"
    assert await on_database(url, version) == heads(service)


@pytest.mark.parametrize("name", SERVICES)
async def test_upgrading_an_up_to_date_database_changes_nothing(make_database, caplog, name):
    service = definition(name)
    url = make_database(f"mig_{name}")
    await upgrade(url, service.script_location())
    await on_database(url, lambda conn: (conn.execute(text("INSERT INTO inbox (consumer, event_id) "
                                                           "VALUES ('c', gen_random_uuid())")), conn.commit()))

    caplog.set_level(logging.INFO, logger="alembic")
    caplog.clear()
    await upgrade(url, service.script_location())

    assert not [r for r in caplog.records if r.getMessage().startswith("Running upgrade")]
    assert await on_database(url, version) == heads(service)
    assert await on_database(url, lambda conn: conn.execute(text("SELECT count(*) FROM inbox")).scalar()) == 1


@pytest.mark.parametrize("name", SERVICES)
async def test_downgrade_to_base_removes_every_table(make_database, name):
    service = definition(name)
    url = make_database(f"mig_{name}")
    await upgrade(url, service.script_location())

    await on_database(url, lambda conn: _downgrade(conn, url, service))

    assert await on_database(url, tables) == {"alembic_version"}


def _downgrade(conn, url: str, service: ServiceDefinition) -> None:
    config = make_config(url, service.script_location())
    config.attributes["connection"] = conn
    command.downgrade(config, "base")


def test_migrate_command_upgrades_and_exits(make_database):
    url = make_database("mig_cli")
    env = {**os.environ, "PARCOURS_ROUTER_DATABASE_URL": url, "PARCOURS_ROUTER_ENVIRONMENT": "test"}

    result = subprocess.run([sys.executable, "-m", "parcours_router", "migrate"], env=env,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert {"customers", "dispatches", "outbox", "inbox", "api_keys"} <= asyncio.run(on_database(url, tables))
    assert asyncio.run(on_database(url, version)) == heads(definition("router"))


async def test_concurrent_upgrades_in_one_process_all_succeed(make_database):
    service = definition("tracker")
    shared, other = make_database("mig_race"), make_database("mig_race")

    await asyncio.wait_for(asyncio.gather(*(upgrade(url, service.script_location()) for url in (shared, shared, other))), 60)

    for url in (shared, other):
        assert await on_database(url, version) == heads(service)
        assert await on_database(url, schema_drift(service)) == []


def test_concurrent_migrate_processes_both_succeed(make_database):
    url = make_database("mig_race")
    env = {**os.environ, "PARCOURS_DUNNING_DATABASE_URL": url, "PARCOURS_DUNNING_ENVIRONMENT": "test"}

    processes = [subprocess.Popen([sys.executable, "-m", "parcours_dunning", "migrate"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in processes]

    assert [code for code, _ in results] == [0, 0], results
    assert asyncio.run(on_database(url, version)) == heads(definition("dunning"))

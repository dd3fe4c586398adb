"""Alembic, the same way for every service.

Each service keeps its scripts in `parcours_<name>/store/migrations/` (env.py, script.py.mako,
versions/). The runtime's tables (outbox, inbox, api_keys) live in every service's database,
so every service's migrations create them too: the autogenerate target is always
[runtime_metadata, the service's metadata].

    python -m parcours_<name> migrate                # upgrade to head, then exit (k8s Job)
    python -m parcours_<name> alembic <command> ...  # any Alembic command, e.g.
        alembic revision --autogenerate --rev-id 0002 -m "add customers.locale"
        alembic upgrade head --sql                   # offline: print the SQL, touch nothing
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from alembic import command, context
from alembic.config import CommandLine, Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from parcours_runtime import inbox, outbox, tenancy  # noqa: F401  (register the runtime tables)
from parcours_runtime.db import SCHEMA_LOCK_ID, runtime_metadata

VERSION_TABLE = "alembic_version"
COMPARE = {"compare_type": True, "compare_server_default": True}  # what autogenerate (and the drift test) look at

_alembic_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def script_location(package: str, folder: str = "store/migrations") -> str:
    """The filesystem path of a service's migrations folder, found from its package."""
    path = resources.files(package).joinpath(*folder.split("/"))
    if not path.joinpath("env.py").is_file():
        raise FileNotFoundError(f"no Alembic env.py in {package}/{folder} (is it shipped as package data?)")
    return str(path)


RUNTIME_VERSIONS = str(resources.files("parcours_runtime").joinpath("migrations_runtime"))


def make_config(database_url: str, script_location: str, **kwargs: Any) -> Config:
    """An Alembic Config built in code (no alembic.ini); kwargs go to Config (cmd_opts, stdout…)."""
    cfg = Config(**kwargs)
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("path_separator", "os")
    # Two branches: the service's own revisions (label `service`) and the runtime's tables
    # (label `runtime`, shipped with parcours_runtime), which every service's first revision needs.
    cfg.set_main_option("version_locations", os.pathsep.join((os.path.join(script_location, "versions"), RUNTIME_VERSIONS)))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))  # ConfigParser interpolates %
    return cfg


async def upgrade(database_url: str, script_location: str, revision: str = "heads") -> None:
    """Upgrade the database to `revision`; concurrent callers wait for each other, then find nothing to do."""
    async with _alembic_turn(), _locked_connection(database_url) as conn:
        await conn.run_sync(_upgrade_on, database_url, script_location, revision)


def _alembic_turn() -> asyncio.Lock:
    """Alembic's `context` is process-global: two runs interleaved on one loop (even on two
    databases) would share it, so they take turns."""
    return _alembic_turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())


def _upgrade_on(connection: Connection, database_url: str, script_location: str, revision: str) -> None:
    cfg = make_config(database_url, script_location)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


@asynccontextmanager
async def _locked_connection(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection holding the session-level schema lock, so Alembic can still open and commit
    its own transactions. NullPool: closing the connection really ends the session, which
    releases the lock even when the migration failed."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": SCHEMA_LOCK_ID})
            await conn.commit()
            yield conn
    finally:
        await engine.dispose()


def run_env(service_metadata: MetaData) -> None:
    """The body of every service's env.py."""
    config = context.config
    options: dict[str, Any] = {
        "target_metadata": [runtime_metadata, service_metadata],
        "version_table": VERSION_TABLE,
        **COMPARE,
    }
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                          dialect_opts={"paramstyle": "named"}, **options)
        with context.begin_transaction():
            context.run_migrations()
    elif (connection := config.attributes.get("connection")) is not None:
        _run_online(connection, options)
    else:  # the Alembic command line: connect ourselves, under the same lock as upgrade()
        asyncio.run(_connect_and_run(config.get_main_option("sqlalchemy.url"), options))


def _run_online(connection: Connection, options: dict[str, Any]) -> None:
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


async def _connect_and_run(database_url: str, options: dict[str, Any]) -> None:
    async with _locked_connection(database_url) as conn:
        await conn.run_sync(_run_online, options)


def alembic_cli(argv: Sequence[str], *, database_url: str, script_location: str, prog: str) -> None:
    """Any Alembic command against one service's database and migrations folder."""
    cli = CommandLine(prog=prog)
    options = cli.parser.parse_args(list(argv))
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(make_config(database_url, script_location, cmd_opts=options), options)

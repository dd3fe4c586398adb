"""Engine, sessions and the runtime's own tables (outbox, inbox, api keys).

The runtime tables live in `runtime_metadata`; each service's migrations create them in its
own database next to its own tables (see parcours_runtime.migrations)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from pydantic_core import to_json
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker,
                                    create_async_engine)

runtime_metadata = MetaData()

SCHEMA_LOCK_ID = 7261001  # pg advisory lock: one schema change at a time per database


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    # No pre-ping: it costs a round trip on every checkout. After a database restart the first
    # use of a stale connection fails, SQLAlchemy then discards the whole pool, and the caller
    # retries (consumers do by themselves; an HTTP client gets a 503 problem once).
    # hide_parameters: a database error that reaches a log never carries the statement's values.
    # LIFO: at a moderate rate the same few connections (and backends) take every unit of work, their
    # prepared statements and generic plans warm, instead of each pooled connection in turn.
    # JSON and JSONB parameters serialised by pydantic_core: a third of json.dumps' time for the same JSON
    # (the tracker, dunning and the portal write a document or two per event).
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True,
                               pool_use_lifo=True, json_serializer=_json_text)


def _json_text(value: Any) -> str:
    return to_json(value).decode()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's own asyncpg connection, autocommitting until the caller opens
    `connection.transaction()`. For the few writes per unit of work on the hottest paths (an invoice
    received, the relay's deletes): SQLAlchemy's session, transaction and statement machinery cost them
    about 200 µs of CPU each, more than the statements themselves. Plain SQL with $n parameters,
    prepared once per connection by asyncpg."""
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        try:
            yield driver
        except BaseException as exc:
            # SQLAlchemy saw neither the transaction nor the failure: never hand back to the pool a connection
            # that is closed (database restarted) or may still be inside a transaction
            if driver.is_closed():
                await connection.invalidate()
                if isinstance(exc, Exception):  # as SQLAlchemy's own connections report it: a 503, retried
                    raise ConnectionError(f"database connection lost: {exc}") from exc
            elif driver.is_in_transaction():
                await connection.invalidate()
            raise


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose every statement commits on its own: no BEGIN and COMMIT round trips for
    work that is one statement, or that must not wait for (or roll back with) a transaction."""
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


async def ensure_schema(engine: AsyncEngine, *metadatas: MetaData) -> None:
    """Create missing tables, unversioned: only for services without migrations (test doubles).
    Serialised by an advisory lock so replicas can start together."""
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK_ID})
        for metadata in (runtime_metadata, *metadatas):
            await conn.run_sync(metadata.create_all)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def asyncpg_dsn(url: str) -> str:
    """The plain libpq DSN asyncpg.connect() takes, from a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)

"""Idempotent inbox: a consumer records each event id it processed in the same
transaction as the effects, so a redelivered event has no second effect."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from sqlalchemy import Column, DateTime, String, Table, func, select
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from parcours_runtime.db import runtime_metadata

inbox_table = Table(
    "inbox",
    runtime_metadata,
    Column("consumer", String, primary_key=True),
    Column("event_id", PG_UUID(as_uuid=True), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


async def claim(session: AsyncSession, consumer: str, event_id: UUID) -> bool:
    """True the first time `consumer` sees `event_id` (in this transaction's view)."""
    return bool(await claim_many(session, consumer, [event_id]))  # one prepared statement for both


async def claim_many(session: AsyncSession, consumer: str, event_ids: list[UUID]) -> set[UUID]:
    """The ids among `event_ids` that `consumer` sees for the first time, claimed in one statement."""
    if not event_ids:
        return set()
    result = await (await session.connection()).exec_driver_sql(_CLAIM_MANY, (consumer, list(set(event_ids))))
    return set(result.scalars())


async def claim_many_on(connection: asyncpg.Connection, consumer: str, event_ids: list[UUID]) -> set[UUID]:
    """claim_many on a driver connection, in the transaction the caller opened on it."""
    if not event_ids:
        return set()
    return {row[0] for row in await connection.fetch(_CLAIM_MANY, consumer, list(set(event_ids)))}


# One statement text whatever the batch size (a multi-row VALUES would be compiled per size), in the
# driver's $n style so that a session (exec_driver_sql) and a driver connection run the same text.
_CLAIM_MANY = ("INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) "
               "ON CONFLICT DO NOTHING RETURNING event_id")


async def already_processed(session: AsyncSession | AsyncConnection, consumer: str, event_ids: list[UUID]) -> set[UUID]:
    """The ids among `event_ids` that `consumer` has processed (committed) before."""
    if not event_ids:
        return set()
    result = await session.execute(
        select(inbox_table.c.event_id).where(inbox_table.c.consumer == consumer,
                                             inbox_table.c.event_id.in_(set(event_ids)))
    )
    return set(result.scalars())

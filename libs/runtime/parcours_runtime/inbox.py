"""Idempotent inbox: a consumer records each event id it processed in the same
transaction as the effects, so a redelivered event has no second effect."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Column, DateTime, String, Table, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import ARRAY
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
    result = await session.execute(_CLAIM_MANY, {"consumer": consumer, "event_ids": list(set(event_ids))})
    return set(result.scalars())


# One statement text whatever the batch size (a multi-row VALUES would be compiled per size).
_CLAIM_MANY = text(
    "INSERT INTO inbox (consumer, event_id) SELECT :consumer, unnest(:event_ids) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
).bindparams(bindparam("event_ids", type_=ARRAY(PG_UUID(as_uuid=True)))).columns(event_id=PG_UUID(as_uuid=True))


async def already_processed(session: AsyncSession | AsyncConnection, consumer: str, event_ids: list[UUID]) -> set[UUID]:
    """The ids among `event_ids` that `consumer` has processed (committed) before."""
    if not event_ids:
        return set()
    result = await session.execute(
        select(inbox_table.c.event_id).where(inbox_table.c.consumer == consumer,
                                             inbox_table.c.event_id.in_(set(event_ids)))
    )
    return set(result.scalars())

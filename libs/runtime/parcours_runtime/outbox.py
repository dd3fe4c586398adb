"""Transactional outbox.

Handlers and routes never publish to Kafka. They add events to the outbox table in the
same transaction as their state change; `OutboxRelay` publishes committed rows and deletes
them. The unit of work wakes its process's relays right after its commit, so they do not poll;
a slow safety tick covers rows another process committed and left (a replica that crashed
before relaying). Not a PostgreSQL NOTIFY: transactions that NOTIFY commit one at a time, which
capped concurrent requests' commits. Delivery is at least once: consumers deduplicate on
event_id through their inbox.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging

from aiokafka import AIOKafkaProducer
from sqlalchemy import BigInteger, Column, DateTime, Identity, LargeBinary, String, Table, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from parcours_contracts import topic_for
from parcours_contracts.events import EventEnvelope
from parcours_runtime.db import runtime_metadata
from parcours_runtime.tracing import current_trace_headers

log = logging.getLogger(__name__)

_relays_waiting: set[asyncio.Event] = set()  # the wake-up of each running relay of this process


def wake_relays() -> None:
    """Committed outbox rows are waiting: every relay of this process looks now."""
    for wake in list(_relays_waiting):
        wake.set()

outbox_table = Table(
    "outbox",
    runtime_metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("topic", String, nullable=False),
    Column("key", String, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


StagedEvent = tuple[EventEnvelope, dict[str, str]]  # an event and the trace context it was raised in


def stage(event: EventEnvelope) -> StagedEvent:
    """Pair an event with the current trace context (a batch commits events of many traces)."""
    return event, current_trace_headers()


async def add_to_outbox(session: AsyncSession, staged: list[StagedEvent]) -> None:
    """Write staged events in the caller's transaction."""
    if not staged:
        return
    await session.execute(_INSERT_ROWS, {
        "topics": [topic_for(event) for event, _ in staged],
        "keys": [event.key for event, _ in staged],
        "payloads": [event.model_dump_json().encode() for event, _ in staged],
        "headers": [json.dumps({"event-type": event.type, "event-id": str(event.event_id), **_labels(event),
                                **trace_headers}) for event, trace_headers in staged],
    })


# Arrays, not a multi-row VALUES: one statement text whatever the number of events, so it is
# compiled and prepared once (a VALUES list is a new statement for every batch size). Rows get
# their ids in the order given: the relay publishes an invoice's events in the order raised.
_INSERT_ROWS = text(
    "INSERT INTO outbox (topic, key, payload, headers) "
    "SELECT topic, key, payload, headers::jsonb "
    "FROM unnest(:topics, :keys, :payloads, :headers) WITH ORDINALITY AS row(topic, key, payload, headers, n) "
    "ORDER BY n"
).bindparams(bindparam("topics", type_=ARRAY(String)), bindparam("keys", type_=ARRAY(String)),
             bindparam("payloads", type_=ARRAY(LargeBinary)), bindparam("headers", type_=ARRAY(String)))


def _labels(event: EventEnvelope) -> dict[str, str]:
    """What operators count events by (channel, purpose), as headers: consumers and metrics read
    them without parsing the payload."""
    return {name: str(value) for name in ("channel", "purpose") if (value := getattr(event, name, None))}


async def outbox_backlog(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(outbox_table))).scalar_one()


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, producer: AIOKafkaProducer, *, batch_size: int = 500,
                 safety_tick_seconds: float = 1.5):
        self._engine = engine
        self._producer = producer
        self._batch_size = batch_size
        self._safety_tick = safety_tick_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self.published = 0
        self.published_by: collections.Counter[tuple[str, str, str]] = collections.Counter()  # type, channel, purpose

    async def relay_once(self) -> int:
        """Publish one batch of committed rows; returns how many were published."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(
                select(outbox_table).order_by(outbox_table.c.id)
                .limit(self._batch_size).with_for_update(skip_locked=True)
            )).all()
            if not rows:
                return 0
            sends = [
                await self._producer.send(
                    row.topic, row.payload, key=row.key.encode(),
                    headers=[(k, str(v).encode()) for k, v in row.headers.items()],
                )
                for row in rows
            ]
            await asyncio.gather(*sends)  # all acked by the broker before we delete
            await conn.execute(delete(outbox_table).where(outbox_table.c.id.in_([r.id for r in rows])))
        self.published += len(rows)
        self.published_by.update((row.headers.get("event-type", ""), row.headers.get("channel", ""),
                                  row.headers.get("purpose", "")) for row in rows)
        return len(rows)

    async def flush(self) -> None:
        while await self.relay_once():
            pass

    async def run(self) -> None:
        _relays_waiting.add(self._wake)
        try:
            await self._run()
        finally:
            _relays_waiting.discard(self._wake)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            self._wake.clear()
            try:
                published = await self.relay_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: keep the rows, try again
                log.warning("outbox relay failed, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published == self._batch_size:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._safety_tick)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop the loop, then publish whatever is still committed."""
        self._stopping = True
        self._wake.set()
        await self.flush()

"""Transactional outbox.

Handlers and routes never publish to Kafka. They add events to the outbox table in the
same transaction as their state change; `OutboxRelay` publishes committed rows and deletes
them. When a session that wrote outbox rows commits, its rows are handed to the relay of its
engine in memory (a session event; `committed()` for rows written on a driver connection), so the
relay publishes them without reading them back and deletes them in one autocommitted statement for
all those published within `DELETE_DELAY_SECONDS`: no BEGIN / SELECT … FOR UPDATE / COMMIT per
publication, which at a moderate rate was a transaction of its own for every unit of work. A read
of the table deletes what was published first, so this relay never publishes a row twice; another
replica's safety tick may, within that delay (consumers' inboxes absorb it).
Rows that were not handed over (another process committed them and crashed, a publish failed,
a rollback to a savepoint) are read from the table: at start, after a failure, and on a slow
safety tick. Not a PostgreSQL NOTIFY: transactions that NOTIFY commit one at a time, which
capped concurrent requests' commits. Delivery is at least once: consumers deduplicate on
event_id through their inbox.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import NamedTuple

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic_core import to_json  # a quarter of json.dumps' time, and the same JSON
from sqlalchemy import BigInteger, Column, DateTime, Identity, LargeBinary, String, Table, delete, event, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from parcours_contracts import topic_for
from parcours_contracts.events import EventEnvelope
from parcours_runtime.db import driver_connection, runtime_metadata
from parcours_runtime.tracing import current_trace_headers

log = logging.getLogger(__name__)

HANDED_MAX_BATCHES = 20  # rows held in memory for the relay, in batches; beyond, they are read from the table
# Rows published from memory are deleted together, at most this long after the first of them (or by the batch):
# at a moderate rate every unit of work otherwise cost PostgreSQL a second transaction (and WAL flush), the delete.
DELETE_DELAY_SECONDS = 0.1
_relays: dict[Engine, "OutboxRelay"] = {}  # the running relay of each engine of this process
_WRITTEN = "parcours.outbox_rows"  # session.info key: the rows this session's transaction wrote
_FORGOTTEN = "parcours.outbox_forgotten"  # …and some were dropped from memory by a savepoint's rollback


class OutboxRow(NamedTuple):
    id: int
    topic: str
    key: str
    payload: bytes
    headers: dict[str, str]


def _look_everywhere() -> None:
    for relay in list(_relays.values()):
        relay.look()


@event.listens_for(Session, "after_commit")
def _hand_over(session: Session) -> None:
    rows = session.info.pop(_WRITTEN, None)
    forgotten = session.info.pop(_FORGOTTEN, False)
    if rows:
        _handed_over(_relays.get(session.get_bind()), rows)
    if forgotten:  # committed rows no relay holds in memory: read the table
        _look_everywhere()


def _handed_over(relay: "OutboxRelay | None", rows: list[OutboxRow]) -> None:
    if relay is not None:
        relay.hand_over(rows)
    elif rows:  # no relay of this engine runs in this process (yet): the table has them
        _look_everywhere()


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction) -> None:
    # Any rollback, a savepoint's included: never publish from memory a row that may not be committed.
    # What the transaction still commits is read from the table.
    if session.info.pop(_WRITTEN, None):
        session.info[_FORGOTTEN] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction) -> None:
    if not transaction.nested:  # closed without a commit (after_commit came first otherwise)
        session.info.pop(_WRITTEN, None)
        session.info.pop(_FORGOTTEN, None)

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
    """Write staged events in the caller's transaction; its commit hands them to the relay."""
    if not staged:
        return
    columns = staged_columns(staged)
    ids = (await (await session.connection()).exec_driver_sql(_INSERT_ROWS, columns.parameters)).scalars().all()
    session.sync_session.info.setdefault(_WRITTEN, []).extend(outbox_rows(ids, columns))


async def insert_into_outbox(connection: asyncpg.Connection, staged: list[StagedEvent]) -> list[OutboxRow]:
    """Write staged events with a driver connection (parcours_runtime.db.driver_connection), in the
    transaction the caller opened on it; once it commits, the caller gives the rows to `committed()`."""
    if not staged:
        return []
    columns = staged_columns(staged)
    return outbox_rows([row[0] for row in await connection.fetch(_INSERT_ROWS, *columns.parameters)], columns)


def committed(engine: AsyncEngine, rows: list[OutboxRow]) -> None:
    """Outbox rows written with a driver connection of `engine` are committed: hand them to its relay."""
    _handed_over(_relays.get(engine.sync_engine), rows)


class StagedColumns(NamedTuple):
    """Staged events as the columns of their outbox rows."""

    topics: list[str]
    keys: list[str]
    payloads: list[bytes]
    headers_json: list[str]
    headers: list[dict[str, str]]  # as the relay sends them

    @property
    def parameters(self) -> tuple[list[str], list[str], list[bytes], list[str]]:
        """The arrays an INSERT … SELECT … FROM unnest(text[], text[], bytea[], text[]) of the rows takes."""
        return self.topics, self.keys, self.payloads, self.headers_json

    def only(self, indexes: list[int]) -> "StagedColumns":
        """The columns of the events at `indexes`, in that order."""
        return StagedColumns(*([column[i] for i in indexes] for column in self))


def staged_columns(staged: list[StagedEvent]) -> StagedColumns:
    """For a statement of the caller's own that writes outbox rows (`outbox_rows` makes the relay's rows
    from the ids it returns); `add_to_outbox` and `insert_into_outbox` otherwise."""
    headers = [{"event-type": event.type, "event-id": str(event.event_id), **_labels(event), **trace_headers}
               for event, trace_headers in staged]
    return StagedColumns(topics=[topic_for(event) for event, _ in staged], keys=[event.key for event, _ in staged],
                         payloads=[event.model_dump_json().encode() for event, _ in staged],
                         headers_json=[to_json(h).decode() for h in headers], headers=headers)


def outbox_rows(ids: list[int], columns: StagedColumns) -> list[OutboxRow]:
    """The rows written for `columns`, given their ids: drawn in insertion order (ORDER BY n), so sorted ids
    pair with the columns in order."""
    return list(map(OutboxRow, sorted(ids), columns.topics, columns.keys, columns.payloads, columns.headers))


# Arrays, not a multi-row VALUES: one statement text whatever the number of events, so it is prepared
# once per connection (a VALUES list is a new statement for every batch size). Rows get their ids in the
# order given: the relay publishes an invoice's events in the order raised. Plain SQL ($n parameters): run
# through SQLAlchemy's connection (exec_driver_sql) or on the driver connection.
_INSERT_ROWS = (
    "INSERT INTO outbox (topic, key, payload, headers) "
    "SELECT topic, key, payload, headers::jsonb "
    "FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[]) WITH ORDINALITY AS row(topic, key, payload, headers, n) "
    "ORDER BY n RETURNING id")
_DELETE_ROWS = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


async def produce(producer: AIOKafkaProducer, rows: list[OutboxRow], *, topic: str | None = None) -> None:
    """Produce outbox rows (to `topic` instead of their own when given) and wait until the broker acked each."""
    sends = [await producer.send(topic or row.topic, row.payload, key=row.key.encode(),
                                 headers=[(k, str(v).encode()) for k, v in row.headers.items()])
             for row in rows]
    await asyncio.gather(*sends)


async def delete_rows(connection: asyncpg.Connection, ids: list[int]) -> None:
    """Delete published rows by id, in one statement."""
    await connection.execute(_DELETE_ROWS, ids)


def _labels(event: EventEnvelope) -> dict[str, str]:
    """What operators count events by (channel, purpose), as headers: consumers and metrics read
    them without parsing the payload."""
    fields = event.__dict__  # not getattr: pydantic's __getattr__ raises (slowly) for a field the type lacks
    return {name: str(value) for name in ("channel", "purpose") if (value := fields.get(name))}


async def outbox_backlog(session: AsyncSession, relay: "OutboxRelay | None" = None) -> int:
    """Rows committed and not yet published (by `relay`, when given: its published rows wait a moment to be
    deleted)."""
    query = select(func.count()).select_from(outbox_table)
    if relay is not None and relay.published_not_deleted:
        query = query.where(outbox_table.c.id.not_in(relay.published_not_deleted))
    return (await session.execute(query)).scalar_one()


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, producer: AIOKafkaProducer, *, batch_size: int = 500,
                 safety_tick_seconds: float = 1.5):
        self._engine = engine
        self._producer = producer
        self._batch_size = batch_size
        self._safety_tick = safety_tick_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._handed: collections.deque[OutboxRow] = collections.deque()
        # Read the table, not the hand-overs: at start (rows a previous run left) and after a failure, until
        # it is empty, so that an invoice's events still go out in the order they were raised.
        self._from_table = True
        self._reread = False  # look() during a read of the table: read it once more
        self._pass = asyncio.Lock()  # one pass at a time: a row is never published twice by this relay
        self._table_read_at = 0.0  # loop time of the last read of the table
        self._published_ids: list[int] = []  # published from memory, not deleted yet
        self._delete_due: float | None = None  # loop time by which they are deleted
        self.published = 0
        self.published_from: collections.Counter[str] = collections.Counter()  # rows: "table" or "memory" (hand-overs)
        self.published_by: collections.Counter[tuple[str, str, str]] = collections.Counter()  # type, channel, purpose

    @property
    def published_not_deleted(self) -> list[int]:
        return list(self._published_ids)

    def hand_over(self, rows: list[OutboxRow]) -> None:
        """Rows a session of this engine just committed. Kept while the table is being read too: those the
        read publishes are dropped from memory after it, the others go next, in commit order."""
        if len(self._handed) + len(rows) > HANDED_MAX_BATCHES * self._batch_size:
            # The broker has been away a while: memory stays bounded, the table has them all (read in order).
            self._handed.clear()
            self._from_table = self._reread = True
        else:
            self._handed.extend(rows)
        self._wake.set()

    def look(self) -> None:
        """Rows were committed without a hand-over: read the table."""
        self._from_table = self._reread = True
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch of committed rows read from the table; returns how many were published."""
        async with self._pass:
            await self._delete_published()  # what was published is not read (and published) again
            self._table_read_at = asyncio.get_running_loop().time()
            async with self._engine.begin() as conn:
                rows = (await conn.execute(
                    select(outbox_table).order_by(outbox_table.c.id)
                    .limit(self._batch_size).with_for_update(skip_locked=True)
                )).all()
                if not rows:
                    return 0
                await produce(self._producer, rows)  # all acked by the broker before they are deleted
                await conn.execute(delete(outbox_table).where(outbox_table.c.id.in_([r.id for r in rows])))
            self._count(rows)
            self.published_from["table"] += len(rows)
            done = {row.id for row in rows}
            if self._handed:  # handed over meanwhile and published now: not again
                self._handed = collections.deque(row for row in self._handed if row.id not in done)
            return len(rows)

    async def relay_handed(self) -> int:
        """Publish rows handed over at commit; they are deleted with those published just after them
        (`DELETE_DELAY_SECONDS`), in one autocommitted statement."""
        async with self._pass:
            rows = [self._handed.popleft() for _ in range(min(self._batch_size, len(self._handed)))]
            if not rows:
                return 0
            try:
                await produce(self._producer, rows)
            except BaseException:
                self._handed.clear()  # all of them are in the table: read from there, in order
                self._from_table = True
                raise
            self._count(rows)
            self.published_from["memory"] += len(rows)
            self._published_ids += [row.id for row in rows]
            if len(self._published_ids) >= self._batch_size:
                await self._delete_published()
            elif self._delete_due is None:
                self._delete_due = asyncio.get_running_loop().time() + DELETE_DELAY_SECONDS
            return len(rows)

    async def _delete_published(self) -> None:
        """Delete the rows published from memory (kept to try again if the database is away meanwhile: until
        then a restart publishes them once more, which consumers' inboxes absorb)."""
        if not self._published_ids:
            return
        async with driver_connection(self._engine) as connection:  # autocommitted
            await delete_rows(connection, self._published_ids)
        self._published_ids, self._delete_due = [], None

    def _count(self, rows) -> None:
        """Published (the backlog gauge leaves them out while they wait to be deleted)."""
        self.published += len(rows)
        self.published_by.update((row.headers.get("event-type", ""), row.headers.get("channel", ""),
                                  row.headers.get("purpose", "")) for row in rows)

    async def flush(self) -> None:
        self._from_table, self._handed = True, collections.deque()  # every committed row is in the table
        while await self.relay_once():
            pass

    async def run(self) -> None:
        engine = self._engine.sync_engine
        _relays[engine] = self
        try:
            await self._run()
        finally:
            if _relays.get(engine) is self:
                del _relays[engine]

    async def _run(self) -> None:
        backoff = 0.1
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            if loop.time() - self._table_read_at > self._safety_tick:
                self._from_table = True  # the safety tick, busy or not: rows another process committed and left
            try:
                if self._delete_due is not None and loop.time() >= self._delete_due:
                    async with self._pass:
                        await self._delete_published()
                if self._from_table:
                    self._reread = False
                    published = await self.relay_once()
                    if published < self._batch_size and not self._reread:
                        # Caught up: what was committed since the read was handed over (under a steady load
                        # something always is, and waiting for a quiet moment kept the relay on the table).
                        self._from_table = False
                else:
                    published = await self.relay_handed()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: keep the rows, try again
                self._from_table = True
                log.warning("outbox relay failed, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published == self._batch_size or self._handed:
                continue
            timeout = self._safety_tick
            if self._delete_due is not None:
                timeout = max(0.0, min(timeout, self._delete_due - loop.time()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop the loop, then publish whatever is still committed."""
        self._stopping = True
        self._wake.set()
        await self.flush()

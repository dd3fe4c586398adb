"""The consumer loop every service uses.

Each poll (the records of every partition it returned, each partition's in order) is applied
in ONE unit of work: its event ids are claimed in the inbox in one statement, the handlers run
in order, and the effects, the inbox rows and the outbox rows commit together. The partitions'
offsets are committed only after that commit (the polls of a short interval together, in one
request: a crash re-reads them and the inbox drops them); auto-commit is off. If anything
in the batch fails, the transaction rolls back and the batch's records are applied one by one,
each in its own unit of work, so one bad record costs its neighbours nothing but time.
Transient failures are retried with exponential backoff; after `max_attempts`, or at once for
a record that can never succeed (unparseable, PermanentError), the record goes to
`<topic>.dlq` and the loop moves on.
A rebalance waits for the batch in hand to finish and commit, and commits the offsets applied,
so a revoked partition never loses or double-applies work (the inbox absorbs any redelivery).

Handlers whose work is an outside effect (an SMTP send, a partner API call) are
`EffectHandler`s: their `perform` runs for the whole batch concurrently, outside any
transaction (it must be idempotent on its own, e.g. through a send ledger), and their
`record` runs inside the batch's unit of work with what `perform` returned. Handlers that can
apply many events in one statement are `BatchHandler`s: they get the batch's events of their
type together; one that keeps its own record of the event ids it applied (`deduplicates`) gets no
inbox rows.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from contextlib import contextmanager
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from parcours_contracts import TOPIC_OF, parse_event
from parcours_contracts.events import EventEnvelope
from parcours_runtime import inbox
from parcours_runtime.db import autocommit
from parcours_runtime.dlq import send_to_dlq
from parcours_runtime.handlers import BatchHandler, EffectHandler, Handler, PermanentError
from parcours_runtime.tracing import context_from_kafka_headers, tracer
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)

_Work = tuple[ConsumerRecord, EventEnvelope, Handler]


class _Abandoned(Exception):
    """Stopping while the database is away: leave the batch in hand uncommitted."""


_CONNECTION_ERRORS = (ConnectionRefusedError, ConnectionResetError, asyncpg.exceptions.PostgresConnectionError,
                      asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.AdminShutdownError,
                      asyncpg.exceptions.ConnectionDoesNotExistError)


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database is away (restart, failover, network) rather than that the
    work failed: a lost or refused connection, raw or as SQLAlchemy wraps it."""
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(getattr(exc.orig, "__cause__", None), _CONNECTION_ERRORS) \
            or isinstance(exc.orig, _CONNECTION_ERRORS)
    return False


class _RecordFailed(Exception):
    """Record `index` of a batch failed with `cause`; the batch's transaction is rolled back."""

    def __init__(self, index: int, cause: BaseException):
        super().__init__(f"record {index} of the batch failed: {cause!r}")
        self.index = index
        self.cause = cause


class _CommitBeforeRevoke(ConsumerRebalanceListener):
    def __init__(self, consumer: "EventConsumer"):
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked):
        async with self._consumer._lock:  # the batch in hand finishes and commits first, then its offsets
            await self._consumer._commit_pending()

    async def on_partitions_assigned(self, assigned):
        pass


class EventConsumer:
    def __init__(
        self,
        *,
        group_id: str,
        bootstrap_servers: str,
        handlers: dict[type[EventEnvelope], Handler],
        sessions: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        batch_size: int = 500,
        session_timeout_ms: int = 10000,
        fetch_max_wait_ms: int = 100,
        fetch_min_bytes: int = 1,
        max_partition_fetch_bytes: int = 262144,
        offset_commit_interval_seconds: float = 0.2,
    ):
        self.group_id = group_id
        self._bootstrap = bootstrap_servers
        self._handlers = handlers
        self._sessions = sessions
        self._producer = producer
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._batch_size = batch_size
        self._session_timeout_ms = session_timeout_ms
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._fetch_min_bytes = fetch_min_bytes
        self._max_partition_fetch_bytes = max_partition_fetch_bytes
        self._commit_interval = offset_commit_interval_seconds
        self._pending: dict[TopicPartition, int] = {}  # applied and committed in the database, not yet to Kafka
        self._committed_at = 0.0
        self._engine = engine  # the sessions' engine: reads outside any transaction
        self._topics = sorted({TOPIC_OF[event_type] for event_type in handlers})
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.processed = 0
        self.dead_lettered = 0
        self.handled_by: collections.Counter[tuple[str, str]] = collections.Counter()  # (topic, event type)
        self.dead_lettered_by: collections.Counter[str] = collections.Counter()  # topic
        self.committed: dict[TopicPartition, int] = {}  # the offsets this consumer committed last
        self.applied: dict[TopicPartition, int] = {}  # the next offset to apply, per partition

    @property
    def topics(self) -> list[str]:
        return self._topics

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            client_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._batch_size,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(300, self._session_timeout_ms // 4),
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            fetch_min_bytes=self._fetch_min_bytes,
            max_partition_fetch_bytes=self._max_partition_fetch_bytes,
        )
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=_CommitBeforeRevoke(self))

    async def run(self) -> None:
        if self._consumer is None:
            await self.start()
        assert self._consumer is not None
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            # With offsets to commit, wait for records no longer than until they are due.
            wait = 0.5 if not self._pending else max(0.0, self._committed_at + self._commit_interval - loop.time())
            try:
                batch = await self._consumer.getmany(timeout_ms=int(1000 * wait), max_records=self._batch_size)
            except KafkaError as exc:
                log.warning("poll failed, retrying: %s", exc)
                await asyncio.sleep(1)
                continue
            if not batch:
                if self._pending and loop.time() - self._committed_at >= self._commit_interval:
                    async with self._lock:
                        await self._commit_pending()
                continue
            async with self._lock:
                try:
                    # The whole poll, every partition, in one unit of work: a round trip per statement is
                    # most of a consumer's cost, so fewer, larger transactions. Each partition's records
                    # keep their order; the offsets go after the database commit, in one request for
                    # the polls of `offset_commit_interval_seconds` (not one broker request per small poll;
                    # a crash re-reads what those polls applied and the inbox drops it).
                    await self._process_batch([record for records in batch.values() for record in records])
                    offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
                    self.applied.update(offsets)
                    self._pending.update(offsets)
                    if loop.time() - self._committed_at >= self._commit_interval:
                        await self._commit_pending()
                except _Abandoned:
                    log.warning("stopping while the database is unreachable: the batch in hand is left "
                                "uncommitted, to be read again")
                    return

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stopping.set()
        async with self._lock:
            if self._consumer is not None:
                await self._commit_pending()
                await self._consumer.stop()
                self._consumer = None

    def lag(self) -> dict[TopicPartition, int]:
        """Records behind on each assigned partition this consumer has applied records of (from the
        broker's high watermark seen in the last fetch; no request)."""
        if self._consumer is None:
            return {}
        lags = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is not None and tp in self.applied:
                lags[tp] = max(0, highwater - self.applied[tp])
        return lags

    async def _commit_pending(self) -> None:
        """Commit the offsets of the polls applied since the last commit (their database commits are done)."""
        self._committed_at = asyncio.get_running_loop().time()
        if self._pending and self._consumer is not None:
            offsets, self._pending = self._pending, {}
            await self._commit(offsets)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        try:
            await self._consumer.commit(offsets)
            self.committed.update(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A partition moved away or the broker blinked; its new owner re-reads from the
            # last committed offset and the inbox drops what we already applied.
            log.warning("offset commit for %s failed: %s", sorted(map(str, offsets)), exc)

    async def _process_batch(self, records: list[ConsumerRecord]) -> None:
        work: list[_Work] = []
        for record in records:
            try:
                event = parse_event(record.value)
            except (ValidationError, ValueError, TypeError) as exc:
                await self._dead_letter(record, f"unparseable event: {exc}", attempts=1)
                continue
            handler = self._handlers.get(type(event))
            if handler is not None:  # a topic may carry event types this service does not care about
                work.append((record, event, handler))
        await self._apply_in_batches(work)

    async def _apply_in_batches(self, work: list[_Work]) -> None:
        """All of `work` in one unit of work; when record i fails, the ones before it go again
        together, record i goes alone (that failure was its first attempt), and the rest carry on."""
        while len(work) > 1:
            try:
                await self._apply_batch(work)
                self.processed += len(work)
                self.handled_by.update((record.topic, event.type) for record, event, _ in work)
                return
            except _RecordFailed as failed:
                await self._apply_in_batches(work[:failed.index])
                await self._process_one(*work[failed.index], first_failure=failed.cause)
                work = work[failed.index + 1:]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # not one record's fault (database away, commit failed)
                log.warning("batch of %d failed, applying its records one by one: %r", len(work), exc)
                break
        for item in work:
            await self._process_one(*item)

    async def _apply_batch(self, work: list[_Work]) -> None:
        performed = await self._perform_effects(work)
        async with UnitOfWork(self._sessions) as uow:
            fresh = await inbox.claim_many(uow.session, self.group_id,
                                           [event.event_id for _, event, handler in work if not _deduplicates(handler)])
            todo = []
            for index, (record, event, handler) in enumerate(work):
                # else applied before, or twice in this batch (a handler that deduplicates gets every copy)
                if _deduplicates(handler) or event.event_id in fresh:
                    fresh.discard(event.event_id)
                    todo.append((index, record, event, handler))
            position = 0
            while position < len(todo):
                index, record, event, handler = todo[position]
                if isinstance(handler, BatchHandler):
                    run = list(itertools.takewhile(lambda item: item[3] is handler, todo[position:]))
                    with self._batch_span([(r, e) for _, r, e, _ in run]):
                        await handler.handle([e for _, _, e, _ in run], uow)  # a failure: one by one
                    position += len(run)
                    continue
                with self._span(record, event):
                    try:
                        if isinstance(handler, EffectHandler):
                            await handler.record(event, performed[event.event_id], uow)
                        else:
                            await handler(event, uow)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        raise _RecordFailed(index, exc) from exc
                position += 1
            await uow.commit()

    async def _perform_effects(self, work: list[_Work]) -> dict:
        """Run the batch's outside effects concurrently; _RecordFailed for the first that failed
        (effects already done are idempotent, so going again costs no duplicate)."""
        effects = [(index, record, event, handler) for index, (record, event, handler) in enumerate(work)
                   if isinstance(handler, EffectHandler)]
        if not effects:
            return {}
        done = await self._already_processed([event.event_id for _, _, event, _ in effects])
        todo = {event.event_id: item for item in effects if (event := item[2]).event_id not in done}
        slots = asyncio.Semaphore(min(handler.concurrency for *_, handler in effects))

        async def perform(index: int, record: ConsumerRecord, event: EventEnvelope, handler: EffectHandler) -> Any:
            async with slots:
                with self._span(record, event):
                    return await handler.perform(event)

        results = await asyncio.gather(*(perform(*item) for item in todo.values()), return_exceptions=True)
        for (index, *_), result in zip(todo.values(), results):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                raise _RecordFailed(index, result)
        return dict(zip(todo, results))

    async def _process_one(self, record: ConsumerRecord, event: EventEnvelope, handler: Handler, *,
                           first_failure: BaseException | None = None) -> None:
        """One record in its own unit of work, retried; `first_failure` when a batch already tried it."""
        with self._span(record, event):
            attempt, outage = 1, 0
            while True:
                try:
                    if first_failure is not None:
                        failure, first_failure = first_failure, None
                        raise failure
                    await self._apply(event, handler)
                    self.processed += 1
                    self.handled_by[(record.topic, event.type)] += 1
                    return
                except PermanentError as exc:
                    await self._dead_letter(record, f"{type(exc).__name__}: {exc}", attempts=attempt)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if database_unreachable(exc):
                        # Not the event's fault: no attempt counted, no dead letter; wait for the
                        # database (or give the partition back uncommitted when stopping).
                        if self._stopping.is_set():
                            raise _Abandoned() from exc
                        outage += 1
                        log.warning("database unreachable while handling %s %s, waiting: %r", event.type,
                                    event.event_id, exc)
                        await asyncio.sleep(min(5.0, self._backoff * 2 ** min(outage, 8)))
                        continue
                    log.warning("handling %s %s failed (attempt %d/%d): %r", event.type, event.event_id,
                                attempt, self._max_attempts, exc)
                    if attempt >= self._max_attempts:
                        await self._dead_letter(record, f"{type(exc).__name__}: {exc}", attempts=attempt)
                        return
                    await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
                    attempt += 1

    async def _apply(self, event: EventEnvelope, handler: Handler) -> None:
        if isinstance(handler, EffectHandler):
            if await self._already_processed([event.event_id]):
                return
            result = await handler.perform(event)
        async with UnitOfWork(self._sessions) as uow:
            if not _deduplicates(handler) and not await inbox.claim(uow.session, self.group_id, event.event_id):
                return
            if isinstance(handler, EffectHandler):
                await handler.record(event, result, uow)
            elif isinstance(handler, BatchHandler):
                await handler.handle([event], uow)
            else:
                await handler(event, uow)
            await uow.commit()

    async def _already_processed(self, event_ids: list) -> set:
        """A read outside any transaction: one statement, no BEGIN and ROLLBACK around it."""
        async with autocommit(self._engine) as connection:
            return await inbox.already_processed(connection, self.group_id, event_ids)

    @contextmanager
    def _batch_span(self, items: list[tuple[ConsumerRecord, EventEnvelope]]):
        """One span for events handled together (from one topic or several), linked to each producer's trace."""
        topic = ", ".join(sorted({record.topic for record, _ in items}))
        with tracer().start_as_current_span(
            f"consume {topic} ×{len(items)}", kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                        "messaging.batch.message_count": len(items)},
        ) as span:
            if span.is_recording():  # read each record's trace context only for a span that keeps its links
                for record, _ in items:
                    parent = trace.get_current_span(context_from_kafka_headers(record.headers)).get_span_context()
                    if parent.is_valid:
                        span.add_link(parent)
            yield span

    @contextmanager
    def _span(self, record: ConsumerRecord, event: EventEnvelope):
        """The consumer span of one record, child of the trace its producer was in."""
        with tracer().start_as_current_span(
            f"consume {record.topic}", context=context_from_kafka_headers(record.headers), kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": record.topic,
                        "parcours.event_id": str(event.event_id), "parcours.tenant_id": event.tenant_id},
        ) as span:
            yield span

    async def _dead_letter(self, record: ConsumerRecord, error: str, attempts: int) -> None:
        log.error("dead-lettering %s[%d]@%d after %d attempt(s): %s", record.topic, record.partition,
                  record.offset, attempts, error)
        while True:  # the offset must not move past a record that is neither handled nor dead-lettered
            try:
                await send_to_dlq(self._producer, record, consumer=self.group_id, error=error, attempts=attempts)
                self.dead_lettered += 1
                self.dead_lettered_by[record.topic] += 1
                return
            except KafkaError as exc:
                log.warning("DLQ publish failed, retrying: %s", exc)
                await asyncio.sleep(1)


def _deduplicates(handler: Handler) -> bool:
    """Whether `handler` drops redeliveries itself (see BatchHandler.deduplicates): no inbox row then."""
    return isinstance(handler, BatchHandler) and handler.deduplicates

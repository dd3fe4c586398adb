"""The consumer loop every service uses.

For each record: parse the event, open a unit of work, claim the event id in the inbox,
run the handler, commit (effects + inbox row + outbox rows together). Offsets are committed
per partition only after the records' transactions committed; auto-commit is off. A
rebalance waits for the batch in hand to finish and commit, so a revoked partition never
loses or double-applies work (the inbox absorbs any redelivery). Transient failures are
retried with exponential backoff; after `max_attempts`, or at once for a record that can
never succeed (unparseable, PermanentError), the record goes to `<topic>.dlq` and the loop
moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parcours_contracts import TOPIC_OF, parse_event
from parcours_contracts.events import EventEnvelope
from parcours_runtime import inbox
from parcours_runtime.dlq import send_to_dlq
from parcours_runtime.tracing import context_from_kafka_headers, tracer
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)

Handler = Callable[[EventEnvelope, UnitOfWork], Awaitable[None]]


class PermanentError(Exception):
    """The handler can never succeed with this event: dead-letter it without retrying."""


class _CommitBeforeRevoke(ConsumerRebalanceListener):
    def __init__(self, lock: asyncio.Lock):
        self._lock = lock

    async def on_partitions_revoked(self, revoked):
        async with self._lock:  # the batch in hand finishes and commits first
            pass

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
        producer: AIOKafkaProducer,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        batch_size: int = 500,
        session_timeout_ms: int = 10000,
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
        self._topics = sorted({TOPIC_OF[event_type] for event_type in handlers})
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.processed = 0
        self.dead_lettered = 0

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
        )
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=_CommitBeforeRevoke(self._lock))

    async def run(self) -> None:
        if self._consumer is None:
            await self.start()
        assert self._consumer is not None
        while not self._stopping.is_set():
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=self._batch_size)
            except KafkaError as exc:
                log.warning("poll failed, retrying: %s", exc)
                await asyncio.sleep(1)
                continue
            if not batch:
                continue
            async with self._lock:
                for tp, records in batch.items():
                    for record in records:
                        await self._process(record)
                    await self._commit(tp, records[-1].offset + 1)

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stopping.set()
        async with self._lock:
            if self._consumer is not None:
                await self._consumer.stop()
                self._consumer = None

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        assert self._consumer is not None
        try:
            await self._consumer.commit({tp: offset})
        except (CommitFailedError, KafkaError) as exc:
            # The partition moved away or the broker blinked; its new owner re-reads from
            # the last committed offset and the inbox drops what we already applied.
            log.warning("offset commit for %s failed: %s", tp, exc)

    async def _process(self, record: ConsumerRecord) -> None:
        try:
            event = parse_event(record.value)
        except (ValidationError, ValueError, TypeError) as exc:
            await self._dead_letter(record, f"unparseable event: {exc}", attempts=1)
            return
        handler = self._handlers.get(type(event))
        if handler is None:
            return  # a topic may carry event types this service does not care about
        parent = context_from_kafka_headers(record.headers)
        with tracer().start_as_current_span(
            f"consume {record.topic}", context=parent, kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": record.topic,
                        "parcours.event_id": str(event.event_id), "parcours.tenant_id": event.tenant_id},
        ):
            for attempt in range(1, self._max_attempts + 1):
                try:
                    await self._apply(event, handler)
                    self.processed += 1
                    return
                except PermanentError as exc:
                    await self._dead_letter(record, f"{type(exc).__name__}: {exc}", attempts=attempt)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("handling %s %s failed (attempt %d/%d): %r", event.type, event.event_id,
                                attempt, self._max_attempts, exc)
                    if attempt == self._max_attempts:
                        await self._dead_letter(record, f"{type(exc).__name__}: {exc}", attempts=attempt)
                        return
                    await asyncio.sleep(self._backoff * 2 ** (attempt - 1))

    async def _apply(self, event: EventEnvelope, handler: Handler) -> None:
        async with UnitOfWork(self._sessions) as uow:
            if not await inbox.claim(uow.session, self.group_id, event.event_id):
                return
            await handler(event, uow)
            await uow.commit()

    async def _dead_letter(self, record: ConsumerRecord, error: str, attempts: int) -> None:
        log.error("dead-lettering %s[%d]@%d after %d attempt(s): %s", record.topic, record.partition,
                  record.offset, attempts, error)
        while True:  # the offset must not move past a record that is neither handled nor dead-lettered
            try:
                await send_to_dlq(self._producer, record, consumer=self.group_id, error=error, attempts=attempts)
                self.dead_lettered += 1
                return
            except KafkaError as exc:
                log.warning("DLQ publish failed, retrying: %s", exc)
                await asyncio.sleep(1)

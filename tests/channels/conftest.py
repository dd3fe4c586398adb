"""Channels under test: the real service with a real broker and database, sending to a real
SMTP sink; events are fed and read on the broker as the neighbouring services would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from parcours_channels.bounces.server import BOUNCE_ENDPOINT
from parcours_contracts import (
    DeliveryBounced,
    DispatchFailed,
    DispatchRequested,
    InvoiceDispatched,
    InvoiceSummary,
    Recipient,
    parse_event,
    topic_for,
    topics,
)
from parcours_devstack.smtp_sink import SmtpSink
from parcours_runtime.outbox import outbox_backlog
from parcours_runtime.service import ServiceHost

LINK_SECRET = "test-link-secret"
BOUNCE_SECRET = "test-bounce-secret"
OUTCOME_TOPICS = (topics.INVOICE_DISPATCHED, topics.DISPATCH_FAILED)
BOUNCE_TOPICS = (topics.DELIVERY_BOUNCED,)


class Channels:
    """The running service plus what it needs around it: a way in (publish) and a way to see
    everything it has published once it is idle (settle, then outcomes)."""

    def __init__(self, host: ServiceHost, kafka: str, producer: AIOKafkaProducer):
        self.host = host
        self.kafka = kafka
        self._producer = producer
        self._published = 0

    async def publish(self, *events: DispatchRequested) -> None:
        for event in events:
            await self._producer.send_and_wait(topic_for(event), event.model_dump_json().encode(),
                                               key=event.key.encode())
            self._published += 1

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until every published event was handled or dead-lettered and the outbox is empty."""
        consumer, loop = self.host.consumer_of(DispatchRequested), asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            done = consumer.processed + consumer.dead_lettered >= self._published
            if done:
                async with self.host.ctx.sessions() as session:
                    if await outbox_backlog(session) == 0:
                        return
            if loop.time() > deadline:
                raise AssertionError(f"channels did not settle: {consumer.processed} handled, "
                                     f"{consumer.dead_lettered} dead-lettered of {self._published}")
            await asyncio.sleep(0.05)

    async def outcomes(self) -> list[InvoiceDispatched | DispatchFailed]:
        """Everything on the outcome topics, read to their end (call after settle)."""
        return await read_topics(self.kafka, OUTCOME_TOPICS)

    async def read(self, *names: str) -> list:
        """Everything on the topics `names`, read to their end."""
        return await read_topics(self.kafka, names)

    @property
    def bounce_port(self) -> int:
        return self.host.ctx.extras[BOUNCE_ENDPOINT].port

    async def bounces(self, at_least: int = 0, timeout: float = 10.0) -> list[DeliveryBounced]:
        """Every DeliveryBounced published, once there are `at_least` and the outbox is empty."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with self.host.ctx.sessions() as session:
                backlog = await outbox_backlog(session)
            found = await read_topics(self.kafka, BOUNCE_TOPICS)
            if backlog == 0 and len(found) >= at_least:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(found)} bounce event(s), expected {at_least}; outbox backlog {backlog}")
            await asyncio.sleep(0.1)


async def read_topics(kafka: str, names: tuple[str, ...]) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(name, p) for name in names for p in consumer.partitions_for_topic(name) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        events = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                records = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
                # The whole batch: Tansu's end offset is the last batch's base offset + 1.
                events.extend(parse_event(r.value) for r in records)
        return sorted(events, key=lambda e: e.occurred_at)
    finally:
        await consumer.stop()


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as running:
        yield running


@pytest.fixture
async def start_channels(run_service, kafka, sink) -> AsyncIterator[Callable]:
    """Factory: the channels service sending to `sink` (setting overrides as keywords)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()

    async def start(**overrides) -> Channels:
        host = await run_service("channels", **{"smtp_port": sink.smtp_port, "link_secret": LINK_SECRET,
                                                "bounce_secret": BOUNCE_SECRET, "bounce_smtp_port": 0,
                                                **overrides})
        return Channels(host, kafka, producer)

    yield start
    await producer.stop()


@pytest.fixture
async def channels(start_channels) -> Channels:
    return await start_channels()


def summary(**overrides) -> InvoiceSummary:
    values = dict(number="F-2026-0042", issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1), currency="EUR",
                  total_excl_tax=Decimal("1028.75"), total_tax=Decimal("205.75"), total_incl_tax=Decimal("1234.5"),
                  seller_name="Ateliers Dupont SAS", buyer_name="Boulangerie Martin", customer_ref="CUST-7")
    return InvoiceSummary(**{**values, **overrides})


@pytest.fixture
def make_dispatch() -> Callable[..., DispatchRequested]:
    """Factory: a DispatchRequested as router would publish it (fields overridable)."""

    def make(*, invoice: dict | None = None, **overrides) -> DispatchRequested:
        invoice_id = overrides.pop("invoice_id", None) or uuid.uuid4()
        values = dict(
            tenant_id="acme", invoice_id=invoice_id, correlation_id=f"corr-{invoice_id}", channel="email_link",
            fallback_channels=["postal"],
            recipients=[Recipient(email="jeanne@buyer.example", name="Jeanne Martin"),
                        Recipient(email="compta@buyer.example")],
            invoice=summary(**(invoice or {})),
        )
        return DispatchRequested(**{**values, **overrides})

    return make

"""The shared runtime end to end on the real broker and database: outbox → Kafka →
consumer → inbox, duplicates, poison messages, DLQ and replay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from parcours_contracts import InvoiceReceived, InvoiceSummary, ReminderDue, ReminderInfo, topics
from parcours_devstack.ports import free_port
from parcours_runtime import dlq
from parcours_runtime.handlers import BatchHandler, recorded_once
from parcours_runtime.service import ServiceDefinition, ServiceHost, consumer_lanes
from parcours_runtime.settings import ServiceSettings
from parcours_runtime.uow import UnitOfWork

metadata = MetaData()
seen = Table("seen", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
             Column("invoice_number", String, nullable=False))
applied = Table("applied", metadata, Column("event_id", Uuid, primary_key=True))


def summary(number: str) -> InvoiceSummary:
    return InvoiceSummary(number=number, issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1), currency="EUR",
                          total_excl_tax=Decimal("100.00"), total_tax=Decimal("20.00"),
                          total_incl_tax=Decimal("120.00"), seller_name="S", buyer_name="B", customer_ref="C")


def received(number: str) -> InvoiceReceived:
    invoice_id = uuid.uuid4()
    return InvoiceReceived(tenant_id="t1", invoice_id=invoice_id, correlation_id=str(invoice_id), invoice=summary(number))


class Failing(Exception):
    pass


attempts: dict[str, int] = {}


async def record(event: InvoiceReceived, uow: UnitOfWork) -> None:
    number = event.invoice.number
    attempts[number] = attempts.get(number, 0) + 1
    await uow.session.execute(seen.insert().values(invoice_number=number))
    if number.startswith("FAIL") or (number.startswith("FLAKY") and attempts[number] < 3):
        raise Failing(f"cannot take {number}")


def recorder() -> ServiceDefinition:
    return ServiceDefinition(name="recorder", metadata=metadata, create_app=lambda ctx: FastAPI(),
                             handlers=lambda ctx: {InvoiceReceived: record}, migrations=None)


async def count(host: ServiceHost, number: str | None = None) -> int:
    query = select(func.count()).select_from(seen)
    if number:
        query = query.where(seen.c.invoice_number == number)
    async with host.ctx.sessions() as session:
        return (await session.execute(query)).scalar_one()


@pytest.fixture
async def host(make_database, kafka):
    settings = ServiceSettings(environment="test", database_url=make_database("rec"), kafka_bootstrap_servers=kafka,
                               http_port=free_port(), consumer_max_attempts=4, consumer_session_timeout_ms=2000, consumer_backoff_seconds=0.01)
    attempts.clear()
    h = ServiceHost(recorder(), settings)
    await h.start()
    yield h
    await h.stop()


async def test_outbox_events_reach_the_consumer_once(host, eventually):
    events = [received(f"INV-{i}") for i in range(50)]
    async with UnitOfWork(host.ctx.sessions) as uow:
        uow.publish(*events)
        await uow.commit()
    await eventually(lambda: _eq(count(host), 50))
    assert host.relay.published == 50
    for i in range(50):
        assert await count(host, f"INV-{i}") == 1


async def test_an_event_larger_than_a_partition_fetch_still_arrives(make_database, kafka, eventually):
    """The per-partition fetch size bounds what is fetched ahead, not the size of an event."""
    settings = ServiceSettings(environment="test", database_url=make_database("rec"), kafka_bootstrap_servers=kafka,
                               http_port=free_port(), consumer_session_timeout_ms=2000,
                               consumer_max_partition_fetch_bytes=1024)
    attempts.clear()
    host = ServiceHost(recorder(), settings)
    await host.start()
    try:
        large = received("LARGE")
        large = large.model_copy(update={"invoice": large.invoice.model_copy(update={"buyer_name": "B" * 20_000})})
        async with UnitOfWork(host.ctx.sessions) as uow:
            uow.publish(large, received("SMALL-AFTER"))
            await uow.commit()
        await eventually(lambda: _eq(count(host), 2))
        assert await count(host, "LARGE") == 1 and await count(host, "SMALL-AFTER") == 1
    finally:
        await host.stop()


async def test_rolled_back_unit_of_work_publishes_nothing(host, eventually):
    async with UnitOfWork(host.ctx.sessions) as uow:
        uow.publish(received("NEVER"))
        # no commit: leaving the block rolls back the state change and the event together
    marker = received("AFTER")
    async with UnitOfWork(host.ctx.sessions) as uow:
        uow.publish(marker)
        await uow.commit()
    await eventually(lambda: _eq(count(host, "AFTER"), 1))
    assert await count(host, "NEVER") == 0


async def test_redelivered_event_has_one_effect(host, kafka, eventually):
    event = received("DUP-1")
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()
    for _ in range(3):  # the same event three times, as a crashed relay would resend it
        await producer.send_and_wait(topics.INVOICE_RECEIVED, event.model_dump_json().encode(), key=event.key.encode())
    sentinel = received("DUP-SENTINEL")
    await producer.send_and_wait(topics.INVOICE_RECEIVED, sentinel.model_dump_json().encode(), key=event.key.encode())
    await producer.stop()
    await eventually(lambda: _eq(count(host, "DUP-SENTINEL"), 1))
    assert await count(host, "DUP-1") == 1


async def test_poison_and_failing_messages_go_to_dlq_and_the_consumer_moves_on(host, kafka, eventually):
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()
    key = uuid.uuid4().hex.encode()
    await producer.send_and_wait(topics.INVOICE_RECEIVED, b'{"type": "invoice.received", "oops": true}', key=key)
    await producer.send_and_wait(topics.INVOICE_RECEIVED, b"\xff not json", key=key)
    failing = received("FAIL-1")
    await producer.send_and_wait(topics.INVOICE_RECEIVED, failing.model_dump_json().encode(), key=key)
    flaky = received("FLAKY-1")
    await producer.send_and_wait(topics.INVOICE_RECEIVED, flaky.model_dump_json().encode(), key=key)
    after = received("AFTER-POISON")
    await producer.send_and_wait(topics.INVOICE_RECEIVED, after.model_dump_json().encode(), key=key)
    await producer.stop()

    await eventually(lambda: _eq(count(host, "AFTER-POISON"), 1))
    assert await count(host, "FLAKY-1") == 1, "a transient failure retried to success has one effect"
    assert attempts["FLAKY-1"] == 3
    assert attempts["FAIL-1"] == 4, "bounded retries"
    assert await count(host, "FAIL-1") == 0, "failed attempts roll back their effects"

    letters = await dlq.peek(kafka, topics.INVOICE_RECEIVED)
    assert len(letters) == 3
    assert [l["attempts"] for l in letters] == ["1", "1", "4"]
    assert "unparseable" in letters[0]["error"]
    assert "Failing: cannot take FAIL-1" in letters[2]["error"]
    assert letters[2]["consumer"] == "recorder"
    assert letters[2]["original"].startswith("invoice.received[")


async def test_dlq_replay_reinjects_once(host, kafka, eventually):
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()
    event = received("FAIL-REPLAYED")
    await producer.send_and_wait(topics.INVOICE_RECEIVED, event.model_dump_json().encode(), key=event.key.encode())
    await producer.stop()
    await eventually(lambda: _eq(_dlq_size(kafka), 1))
    assert attempts["FAIL-REPLAYED"] == 4

    assert await dlq.replay(kafka, topics.INVOICE_RECEIVED) == 1
    assert await dlq.replay(kafka, topics.INVOICE_RECEIVED) == 0, "the replay group remembers its position"
    # The handler still refuses it, so the replayed event is handled again and dead-lettered again.
    await eventually(lambda: _eq(_dlq_size(kafka), 2))
    assert attempts["FAIL-REPLAYED"] == 8


async def _dlq_size(kafka):
    return len(await dlq.peek(kafka, topics.INVOICE_RECEIVED))


async def _eq(awaitable, expected):
    return (await awaitable) == expected


async def test_graceful_stop_flushes_outbox(make_database, kafka):
    settings = ServiceSettings(environment="test", database_url=make_database("rec"), kafka_bootstrap_servers=kafka,
                               http_port=free_port(), consumer_session_timeout_ms=2000)
    h = ServiceHost(recorder(), settings)
    await h.start()
    async with UnitOfWork(h.ctx.sessions) as uow:
        uow.publish(*[received(f"STOP-{i}") for i in range(20)])
        await uow.commit()
    await h.stop()
    assert h.relay.published == 20


async def test_topics_are_left_alone_where_they_are_managed_elsewhere(make_database, kafka):
    from aiokafka.admin import AIOKafkaAdminClient

    settings = ServiceSettings(environment="test", database_url=make_database("rec"), kafka_bootstrap_servers=kafka,
                               http_port=free_port(), consumer_session_timeout_ms=2000, create_topics=False)
    h = ServiceHost(recorder(), settings)
    await h.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        # The consumer's own metadata requests may let the broker auto-create what it subscribes
        # to (Tansu does; Kafka with auto.create.topics.enable=false does not); nothing else appears.
        existing = set(await admin.list_topics())
        assert not existing & {topics.dlq(topics.INVOICE_RECEIVED), topics.REMINDER_DUE, topics.DISPATCH_REQUESTED}
    finally:
        await admin.close()
        await h.stop()


async def waiting_on_one_partition(kafka: str, events: list[InvoiceReceived], *,
                                   traceparents: list[str] | None = None) -> None:
    """Produce `events` under one key (one partition, in this order) before any consumer runs."""
    key = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()
    for index, event in enumerate(events):
        headers = [("traceparent", traceparents[index].encode())] if traceparents else None
        await producer.send(topics.INVOICE_RECEIVED, event.model_dump_json().encode(), key=key, headers=headers)
    await producer.flush()
    await producer.stop()


def quick_settings(database_url: str, kafka: str, *, max_attempts: int) -> ServiceSettings:
    return ServiceSettings(environment="test", database_url=database_url, kafka_bootstrap_servers=kafka,
                           http_port=free_port(), consumer_max_attempts=max_attempts, consumer_session_timeout_ms=2000,
                           consumer_backoff_seconds=0.01)


async def test_a_polled_batch_commits_in_one_transaction_and_a_bad_record_costs_only_itself(make_database, kafka):
    """Records waiting on one partition are applied together: their inbox rows share a
    transaction id; the failing one is retried alone and dead-lettered; the others apply once."""
    events = [received(f"BATCH-{i}") for i in range(30)]
    events.insert(12, received("FAIL-IN-BATCH"))
    await waiting_on_one_partition(kafka, events)
    settings = quick_settings(make_database("rec"), kafka, max_attempts=3)
    attempts.clear()
    h = ServiceHost(recorder(), settings)
    await h.start()
    try:
        for _ in range(200):
            if await count(h) == 30 and await _dlq_size(kafka) == 1:
                break
            await asyncio.sleep(0.1)
        assert await count(h) == 30 and await count(h, "FAIL-IN-BATCH") == 0
        assert all(attempts[f"BATCH-{i}"] <= 2 for i in range(30)), "records before the bad one go again at most once"
        assert attempts["FAIL-IN-BATCH"] == 3, "the batch's try was its first attempt"
        async with h.ctx.sessions() as session:
            transactions = (await session.execute(text("SELECT count(DISTINCT xmin::text) FROM inbox"))).scalar_one()
        assert transactions <= 6, f"30 records applied in {transactions} transactions"
    finally:
        await h.stop()


calls: list[int] = []


async def record_many(events: list[InvoiceReceived], uow: UnitOfWork) -> None:
    calls.append(len(events))
    if any(event.invoice.number.startswith("FAIL") for event in events):
        raise Failing("one of them cannot be taken")
    await uow.session.execute(seen.insert(), [{"invoice_number": event.invoice.number} for event in events])


async def batch_recorder(make_database, kafka) -> ServiceHost:
    """A started service applying invoice.received with `record_many`, a BatchHandler."""
    settings = quick_settings(make_database("rec"), kafka, max_attempts=2)
    calls.clear()
    definition = ServiceDefinition(name="many", metadata=metadata, create_app=lambda ctx: FastAPI(),
                                   handlers=lambda ctx: {InvoiceReceived: BatchHandler(record_many)}, migrations=None)
    h = ServiceHost(definition, settings)
    await h.start()
    return h


async def test_a_batch_handler_takes_the_events_together_and_a_bad_one_alone(make_database, kafka):
    events = [received(f"MANY-{i}") for i in range(20)]
    events.insert(7, received("FAIL-MANY"))
    await waiting_on_one_partition(kafka, events)
    h = await batch_recorder(make_database, kafka)
    try:
        for _ in range(200):
            if await count(h) == 20 and await _dlq_size(kafka) == 1:
                break
            await asyncio.sleep(0.1)
        assert await count(h) == 20 and await count(h, "FAIL-MANY") == 0
        assert max(calls) > 1, "events standing together are handled in one call"
        letters = await dlq.peek(kafka, topics.INVOICE_RECEIVED)
        assert [letter["attempts"] for letter in letters] == ["2"]
    finally:
        await h.stop()


async def test_a_batch_handlers_span_links_to_each_events_trace(make_database, kafka, spans):
    events = [received(f"LINKED-{i}") for i in range(5)]
    traces = [uuid.uuid4().hex for _ in events]
    await waiting_on_one_partition(kafka, events, traceparents=[f"00-{trace}-00f067aa0ba902b7-01" for trace in traces])
    h = await batch_recorder(make_database, kafka)
    try:
        for _ in range(200):
            if await count(h) == 5:
                break
            await asyncio.sleep(0.1)
    finally:
        await h.stop()
    batch_spans = [s for s in spans.get_finished_spans() if s.name.startswith(f"consume {topics.INVOICE_RECEIVED} ×")]
    linked = {format(link.context.trace_id, "032x") for s in batch_spans for link in s.links}
    assert batch_spans and linked == set(traces)


handed: list[uuid.UUID] = []


async def record_new(events: list[InvoiceReceived], uow: UnitOfWork) -> None:
    """Keeps its own record of the event ids it applied, in the same transaction, as the tracker's journal does."""
    handed.extend(event.event_id for event in events)
    new = set((await uow.session.execute(
        pg_insert(applied).values([{"event_id": event.event_id} for event in events])
        .on_conflict_do_nothing().returning(applied.c.event_id))).scalars())
    for event in recorded_once(events, new, lambda event: event.event_id):
        await uow.session.execute(seen.insert().values(invoice_number=event.invoice.number))


async def test_a_handler_that_deduplicates_gets_every_copy_and_no_inbox_row_yet_applies_each_event_once(
        make_database, kafka):
    duplicate, sentinel = received("DEDUP-1"), received("DEDUP-SENTINEL")
    await waiting_on_one_partition(kafka, [duplicate, duplicate, received("DEDUP-2"), duplicate, sentinel])
    handed.clear()
    definition = ServiceDefinition(
        name="dedup", metadata=metadata, create_app=lambda ctx: FastAPI(), migrations=None,
        handlers=lambda ctx: {InvoiceReceived: BatchHandler(record_new, deduplicates=True)})
    h = ServiceHost(definition, quick_settings(make_database("rec"), kafka, max_attempts=2))
    await h.start()
    try:
        for _ in range(200):
            if await count(h, "DEDUP-SENTINEL") == 1:
                break
            await asyncio.sleep(0.1)
        assert await count(h) == 3 and await count(h, "DEDUP-1") == 1
        assert handed.count(duplicate.event_id) == 3, "the consumer filtered nothing: the handler did"
        async with h.ctx.sessions() as session:
            assert (await session.execute(text("SELECT count(*) FROM inbox"))).scalar_one() == 0
    finally:
        await h.stop()


def test_urgent_topics_get_a_consumer_of_their_own_fetching_more_often():
    settings = ServiceSettings(environment="test", consumer_fetch_max_wait_ms=50, consumer_quiet_fetch_max_wait_ms=500)
    handlers = {InvoiceReceived: record, ReminderDue: record}
    [(urgent, urgent_wait), (quiet, quiet_wait)] = consumer_lanes(handlers, frozenset({InvoiceReceived}), settings)
    assert (set(urgent), urgent_wait, set(quiet), quiet_wait) == ({InvoiceReceived}, 50, {ReminderDue}, 500)
    assert consumer_lanes(handlers, frozenset(), settings) == [(handlers, 50)], "nothing urgent: one consumer"
    assert consumer_lanes(handlers, frozenset(handlers), settings) == [(handlers, 50)], "all urgent: one consumer"


async def test_two_consumers_of_one_service_share_its_group_and_each_applies_its_own_topics(
        make_database, kafka, eventually):
    async def record_reminder(event: ReminderDue, uow: UnitOfWork) -> None:
        await uow.session.execute(seen.insert().values(invoice_number=f"reminded {event.invoice.number}"))

    definition = ServiceDefinition(name="lanes", metadata=metadata, create_app=lambda ctx: FastAPI(), migrations=None,
                                   handlers=lambda ctx: {InvoiceReceived: record, ReminderDue: record_reminder},
                                   urgent=frozenset({InvoiceReceived}))
    h = ServiceHost(definition, quick_settings(make_database("rec"), kafka, max_attempts=2))
    await h.start()
    try:
        assert [consumer.group_id for consumer in h.consumers] == ["lanes", "lanes"]
        assert topics.INVOICE_RECEIVED in h.consumer_of(InvoiceReceived).topics
        assert h.consumer_of(ReminderDue).topics == sorted(set(h.consumers[1].topics))
        assert not set(h.consumers[0].topics) & set(h.consumers[1].topics)
        invoices = [received(f"LANE-{i}") for i in range(10)]
        async with UnitOfWork(h.ctx.sessions) as uow:
            uow.publish(*invoices, *(ReminderDue(tenant_id="t1", invoice_id=e.invoice_id, correlation_id=e.correlation_id,
                                                 reminder=ReminderInfo(strategy="s", step="first", sequence=1),
                                                 reason="due", invoice=e.invoice) for e in invoices))
            await uow.commit()
        await eventually(lambda: _eq(count(h), 20), what="both consumers applied their events")
        assert await count(h, "reminded LANE-3") == 1 and await count(h, "LANE-3") == 1
        assert h.consumer_of(InvoiceReceived).processed == 10 and h.consumer_of(ReminderDue).processed == 10
    finally:
        await h.stop()

"""PostgreSQL going away under a consumer (a restart, a failover) is not the events' fault: they
wait for the database and are applied once it is back, none dead-lettered however long it takes."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import date
from decimal import Decimal

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from parcours_contracts import InvoiceReceived, InvoiceSummary, topics
from parcours_devstack.ports import free_port
from parcours_devstack.postgres import EmbeddedPostgres, create_database, server_url
from parcours_runtime import dlq
from parcours_runtime.service import ServiceDefinition, ServiceHost
from parcours_runtime.settings import ServiceSettings
from parcours_runtime.uow import UnitOfWork

metadata = MetaData()
applied = Table("applied", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                Column("number", String, nullable=False))


async def apply(event: InvoiceReceived, uow: UnitOfWork) -> None:
    await uow.session.execute(applied.insert().values(number=event.invoice.number))


def received(number: str) -> InvoiceReceived:
    invoice_id = uuid.uuid4()
    return InvoiceReceived(tenant_id="t1", invoice_id=invoice_id, correlation_id=str(invoice_id), invoice=InvoiceSummary(
        number=number, issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1), currency="EUR",
        total_excl_tax=Decimal("100.00"), total_tax=Decimal("20.00"), total_incl_tax=Decimal("120.00"),
        seller_name="S", buyer_name="B", customer_ref="C"))


async def test_events_wait_for_the_database_and_none_is_dead_lettered(tmp_path, kafka):
    postgres = EmbeddedPostgres(tmp_path / "pg").start()
    create_database(postgres.dsn, "outage")
    settings = ServiceSettings(environment="test", database_url=server_url(postgres.dsn, "outage"),
                               kafka_bootstrap_servers=kafka, http_port=free_port(), consumer_max_attempts=2,
                               consumer_backoff_seconds=0.05, consumer_session_timeout_ms=2000)
    host = ServiceHost(ServiceDefinition(name="outage", metadata=metadata, create_app=lambda ctx: FastAPI(),
                                         handlers=lambda ctx: {InvoiceReceived: apply}, migrations=None), settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await host.start()
    await producer.start()

    async def count() -> int:
        async with host.ctx.sessions() as session:
            return (await session.execute(select(func.count()).select_from(applied))).scalar_one()

    async def wait_for(expected: int) -> None:
        for _ in range(300):
            try:
                if await count() == expected:
                    return
            except Exception:  # the database is still coming back
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"{expected} events never applied")

    try:
        for i in range(3):
            event = received(f"BEFORE-{i}")
            await producer.send_and_wait(topics.INVOICE_RECEIVED, event.model_dump_json().encode(), key=event.key.encode())
        await wait_for(3)

        postgres.process.send_signal(signal.SIGINT)  # fast shutdown: connections are cut
        postgres.process.wait(30)
        postgres.process = None
        for i in range(3):
            event = received(f"DURING-{i}")
            await producer.send_and_wait(topics.INVOICE_RECEIVED, event.model_dump_json().encode(), key=event.key.encode())
        await asyncio.sleep(3)  # far beyond 2 attempts with a 0.05 s backoff
        postgres.start()

        await wait_for(6)
        assert await dlq.peek(kafka, topics.INVOICE_RECEIVED) == [], "an outage is nobody's poison"
        assert host.consumer_of(InvoiceReceived).dead_lettered == 0
    finally:
        await producer.stop()
        await host.stop()
        postgres.destroy()

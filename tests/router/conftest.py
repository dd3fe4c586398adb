"""Router test helpers: a running router, tenant clients, and events fed to and read from
the real broker the way neighbouring services would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from parcours_contracts import InvoiceReceived, InvoiceSummary, parse_event
from parcours_contracts.events import EventEnvelope


@pytest.fixture
async def router(run_service):
    return await run_service("router")


@pytest.fixture
async def client_for(router, tenant_key):
    """Factory: an HTTP client authenticated as `tenant_id` on the running router."""
    clients: list[httpx.AsyncClient] = []

    async def make(tenant_id: str = "acme") -> httpx.AsyncClient:
        key = await tenant_key(router, tenant_id=tenant_id, tenant_name=f"{tenant_id} SAS")
        client = httpx.AsyncClient(base_url=router.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def customer_body(*, channels=("email_link", "email_attachment"), contacts=None, **fields) -> dict:
    return {"name": "Alpha Industries SAS", "channels": list(channels),
            "contacts": contacts or [{"email": "ap@alpha.example", "name": "Accounts payable", "role": "accounting"},
                                     {"email": "cfo@alpha.example"}],
            **fields}


def summary(customer_ref: str, number: str = "INV-1") -> InvoiceSummary:
    return InvoiceSummary(number=number, issue_date=date(2026, 11, 1), due_date=date(2026, 12, 1), currency="EUR",
                          total_excl_tax=Decimal("100.00"), total_tax=Decimal("20.00"),
                          total_incl_tax=Decimal("120.00"), seller_name="Seller SA", buyer_name="Alpha Industries SAS",
                          customer_ref=customer_ref)


def invoice_received(customer_ref: str, *, tenant_id: str = "acme", number: str = "INV-1") -> InvoiceReceived:
    invoice_id = uuid.uuid4()
    return InvoiceReceived(tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=f"corr-{invoice_id}",
                           invoice=summary(customer_ref, number))


@pytest.fixture
def helpers():
    """Builders shared by the router tests (conftest modules are not importable in importlib mode)."""
    class Helpers:
        customer_body = staticmethod(customer_body)
        summary = staticmethod(summary)
        invoice_received = staticmethod(invoice_received)
    return Helpers



class TopicReader:
    """Reads a topic from its beginning, with no consumer group, keeping every event seen."""

    def __init__(self, bootstrap: str, topic: str):
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                          auto_offset_reset="earliest")
        self._topic = topic
        self.seen: list[EventEnvelope] = []

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.topics()  # loads the metadata; the router created the topics at start-up
        partitions = self._consumer.partitions_for_topic(self._topic) or ()
        assert partitions, f"topic {self._topic} does not exist"
        self._consumer.assign([TopicPartition(self._topic, p) for p in partitions])

    async def stop(self) -> None:
        await self._consumer.stop()

    async def wait_for(self, predicate: Callable[[EventEnvelope], bool], count: int = 1,
                       timeout: float = 20.0) -> list[EventEnvelope]:
        """The events matching `predicate`, once there are at least `count` of them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            matching = [event for event in self.seen if predicate(event)]
            if len(matching) >= count:
                return matching
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(matching)} matching event(s) on {self._topic}, expected {count}")
            batch = await self._consumer.getmany(timeout_ms=200)
            self.seen.extend(parse_event(record.value) for records in batch.values() for record in records)

    async def drain(self, settle: float = 0.5) -> list[EventEnvelope]:
        """Everything seen once the topic stayed quiet for `settle` seconds."""
        while True:
            batch = await self._consumer.getmany(timeout_ms=int(settle * 1000))
            if not batch:
                return self.seen
            self.seen.extend(parse_event(record.value) for records in batch.values() for record in records)


@pytest.fixture
async def read_topic(kafka, router):
    """Factory: a TopicReader on `topic` (the router must be running, so that topics exist)."""
    readers: list[TopicReader] = []

    async def make(topic: str) -> TopicReader:
        reader = TopicReader(kafka, topic)
        await reader.start()
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        await reader.stop()

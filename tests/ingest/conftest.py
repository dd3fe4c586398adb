"""Fixtures of the ingest tests: a running ingest (real PostgreSQL and broker), a tenant key,
a valid invoice body, and a reader of what ingest published."""

from __future__ import annotations

import asyncio
import base64
import copy
import uuid
from collections.abc import Callable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from sqlalchemy import func, select

from parcours_contracts import parse_event
from parcours_contracts.events import EventEnvelope
from parcours_runtime.outbox import outbox_table

ADMIN = {"Authorization": "Bearer dev-admin-token"}
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

VALID_INVOICE = {
    "number": "F-2026-0001",
    "issue_date": "2026-11-02",
    "due_date": "2026-12-02",
    "currency": "EUR",
    "seller": {"name": "ACME SAS", "siren": "123456789", "siret": "12345678900012", "vat_id": "FR32123456789"},
    "buyer": {"customer_ref": "CUST-42", "name": "Dupont SARL", "siren": "987654321"},
    "lines": [
        # 3 × 33.335 = 100.005 → 100.01 (rounded half up)
        {"description": "Consulting", "quantity": "3", "unit_price": "33.335", "vat_rate": 20,
         "line_total_excl_tax": "100.01"},
        # a JSON number read as Decimal, never float: 0.1 × 3 is exactly 0.30
        {"description": "Stamps", "quantity": 0.1, "unit_price": 3, "vat_rate": 5.5, "line_total_excl_tax": 0.30},
        {"description": "Envelopes", "quantity": 1, "unit_price": "0.30", "vat_rate": "5.5", "line_total_excl_tax": "0.30"},
        {"description": "Travel", "quantity": 1, "unit_price": "19.99", "vat_rate": "20.0",
         "line_total_excl_tax": "19.99"},
    ],
    # VAT per rate on the summed base: 20 % of 120.00 = 24.00, 5.5 % of 0.60 = 0.033 → 0.03
    # (rounding line by line would give 20.00 + 0.02 + 0.02 + 4.00 = 24.04)
    "totals": {"total_excl_tax": "120.60", "total_tax": "24.03", "total_incl_tax": "144.63"},
}


@pytest.fixture
def make_invoice() -> Callable[..., dict]:
    """Factory: a valid invoice body (a fresh number unless given), optionally with the test PDF."""

    def make(number: str | None = None, *, with_pdf: bool = False) -> dict:
        body = copy.deepcopy(VALID_INVOICE)
        body["number"] = number or f"F-{uuid.uuid4().hex[:10]}"
        if with_pdf:
            body["pdf"] = base64.b64encode(PDF).decode()
        return body

    return make


@pytest.fixture
async def ingest(run_service):
    return await run_service("ingest")


@pytest.fixture
async def client(ingest):
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as http:
        yield http


@pytest.fixture
async def acme(ingest, tenant_key) -> dict[str, str]:
    """Authorization headers of tenant "acme"."""
    return {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='acme', tenant_name='ACME SAS')}"}


@pytest.fixture
def sample_pdf() -> bytes:
    return PDF


@pytest.fixture
def count_rows() -> Callable:
    """Counter: rows of a table (or model) in a host's database."""

    async def count(host, table_or_model) -> int:
        async with host.ctx.sessions() as session:
            return (await session.execute(select(func.count()).select_from(table_or_model))).scalar_one()

    return count


@pytest.fixture
def outbox_size(ingest, count_rows) -> Callable:
    """Events committed but not yet relayed (the relay empties it within milliseconds)."""
    return lambda: count_rows(ingest, outbox_table)


@pytest.fixture
def read_events(kafka) -> Callable:
    """Reader: every event on `topic` once `until(events)` holds (all partitions, to their end)."""

    async def read(topic: str, *, until: Callable[[list[EventEnvelope]], bool], timeout: float = 20.0) -> list[EventEnvelope]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                await consumer.topics()
                partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            events: list[EventEnvelope] = []
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                events += [parse_event(record.value) for records in batch.values() for record in records]
                if until(events):
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"condition not met on {topic}; saw {len(events)} event(s)")
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:  # drain the rest, so that "nothing else" assertions see everything
                while await consumer.position(tp) < ends[tp]:
                    records = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
                    events += [parse_event(record.value) for record in records]
            return events
        finally:
            await consumer.stop()

    return read

"""Real infrastructure for every test: PostgreSQL (embedded, or PARCOURS_TEST_POSTGRES_DSN),
a Tansu Kafka-protocol broker per test (or PARCOURS_TEST_KAFKA_BOOTSTRAP), services run
in-process or as real processes."""

from __future__ import annotations

import importlib
import itertools
import os
import uuid

import pytest

from parcours_devstack.broker import TansuBroker
from parcours_devstack.ports import free_port
from parcours_devstack.postgres import EmbeddedPostgres, create_database, server_url
from parcours_devstack.services import ServiceProcess, service_env

_db_counter = itertools.count()

# One tracer provider for the whole test process (OpenTelemetry allows one), recording spans
# in memory so tests can follow a trace across services run in-process.
from opentelemetry import trace as _trace
from opentelemetry.sdk.trace import TracerProvider as _TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor as _SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter as _InMemorySpanExporter

_span_exporter = _InMemorySpanExporter()
_provider = _TracerProvider()
_provider.add_span_processor(_SimpleSpanProcessor(_span_exporter))
_trace.set_tracer_provider(_provider)


@pytest.fixture(autouse=True)
def spans():
    """Spans finished during this test (in-process services only)."""
    _span_exporter.clear()
    yield _span_exporter
    _span_exporter.clear()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> str:
    """DSN of a PostgreSQL server (postgresql://…/postgres)."""
    external = os.environ.get("PARCOURS_TEST_POSTGRES_DSN")
    if external:
        yield external
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data").start()
    try:
        yield server.dsn
    finally:
        server.destroy()


@pytest.fixture
def make_database(pg_server):
    """Factory: a fresh, empty database; returns its SQLAlchemy async URL."""

    def make(prefix: str = "t") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_db_counter)}_{uuid.uuid4().hex[:6]}"
        create_database(pg_server, name)
        return server_url(pg_server, name)

    return make


@pytest.fixture
def kafka(tmp_path) -> str:
    """Bootstrap servers of a fresh, empty broker for this test."""
    external = os.environ.get("PARCOURS_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = TansuBroker(log_path=tmp_path / "broker.log").start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
async def run_service(make_database, kafka):
    """Factory: start a service in this process (real DB, broker, HTTP port); stopped after the test."""
    from parcours_runtime.service import ServiceHost

    hosts: list[ServiceHost] = []

    async def start(name: str, **overrides) -> ServiceHost:
        app_module = importlib.import_module(f"parcours_{name}.app")
        config_module = importlib.import_module(f"parcours_{name}.config")
        settings = config_module.Settings(**{
            "environment": "test",
            "database_url": overrides.pop("database_url", None) or make_database(name),
            "kafka_bootstrap_servers": kafka,
            "http_port": free_port(),
            "consumer_backoff_seconds": 0.05,
            "consumer_session_timeout_ms": 2000,
            **overrides,
        })
        host = ServiceHost(app_module.definition(), settings)
        await host.start()
        hosts.append(host)
        return host

    yield start
    for host in reversed(hosts):
        await host.stop()


@pytest.fixture
def spawn_service(make_database, kafka, tmp_path):
    """Factory: start a service as a real process (for kill -9); killed after the test."""
    processes: list[ServiceProcess] = []

    def spawn(name: str, *, database_url: str | None = None, port: int | None = None,
              extra: dict[str, str] | None = None) -> ServiceProcess:
        port = port or free_port()
        env = service_env(name, database_url=database_url or make_database(name), bootstrap=kafka, port=port,
                          # CPU_NICENESS 0: the test workers keep the box busy; no service under test waits behind them.
                          extra={"ENVIRONMENT": "test", "CONSUMER_BACKOFF_SECONDS": "0.05",
                                 "CONSUMER_SESSION_TIMEOUT_MS": "2000", "CPU_NICENESS": "0", **(extra or {})})
        proc = ServiceProcess(name, env, port, log_path=tmp_path / f"{name}-{len(processes)}.log").start()
        processes.append(proc)
        return proc

    yield spawn
    for proc in processes:
        proc.kill()


@pytest.fixture
def tenant_key():
    """Factory: make a tenant API key known to a running service the way production does it,
    by a `tenant.api_key_issued` event on the broker; returns the key once it authenticates."""
    import asyncio

    from sqlalchemy import select

    from parcours_contracts import TenantApiKeyIssued
    from parcours_runtime.tenancy import api_keys_table, generate_api_key, hash_api_key
    from parcours_runtime.uow import UnitOfWork

    async def issue(host, tenant_id: str = "acme", tenant_name: str = "ACME SAS") -> str:
        key_id, key = generate_api_key()
        async with UnitOfWork(host.ctx.sessions) as uow:
            uow.publish(TenantApiKeyIssued(tenant_id=tenant_id, correlation_id=f"tenant-{tenant_id}", key_id=key_id,
                                           key_hash=hash_api_key(key), tenant_name=tenant_name))
            await uow.commit()
        for _ in range(400):
            async with host.ctx.sessions() as session:
                if (await session.execute(select(api_keys_table.c.key_id).where(api_keys_table.c.key_id == key_id))).first():
                    return key
            await asyncio.sleep(0.05)
        raise AssertionError("the service never learned the API key")

    return issue


@pytest.fixture
async def publish(kafka):
    """Publish events on their topics as the other services' outbox relays would (key = invoice id)."""
    from aiokafka import AIOKafkaProducer

    from parcours_contracts import topic_for

    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()

    async def send(*events) -> None:
        for event in events:
            await producer.send_and_wait(topic_for(event), event.model_dump_json().encode(), key=event.key.encode())

    yield send
    await producer.stop()


@pytest.fixture
def eventually():
    """`await eventually(predicate, what=…)`: await `predicate()` until it returns something truthy
    (returned), or fail after `timeout` seconds."""
    import asyncio

    async def wait(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = await predicate()
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{what} not met within {timeout}s (last: {result!r})")
            await asyncio.sleep(interval)

    return wait


@pytest.fixture
def read_topic(kafka):
    """`await read_topic(topic, until)`: the topic's events from the start, once `until(events)` holds
    (or fail after `timeout` seconds), plus whatever arrives in the next `settle` seconds (events published
    alongside the awaited ones, so that a test can say there were no more)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    from parcours_contracts import parse_event

    async def read(topic: str, until, timeout: float = 20.0, settle: float = 0.45) -> list:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        events: list = []
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while not until(events):
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{topic}: condition not met in time; read {events!r}")
                batch = await consumer.getmany(timeout_ms=200)
                events += [parse_event(r.value) for records in batch.values() for r in records]
            settled = asyncio.get_running_loop().time() + settle
            while asyncio.get_running_loop().time() < settled:
                batch = await consumer.getmany(timeout_ms=150)
                events += [parse_event(r.value) for records in batch.values() for r in records]
        finally:
            await consumer.stop()
        return events

    return read

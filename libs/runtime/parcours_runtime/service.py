"""Process host: one asyncio loop runs a service's HTTP API, its consumer, its outbox relay
and its background jobs, sharing one context. SIGTERM stops consuming, lets in-flight work
finish, flushes the outbox and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.propagate import extract, get_global_textmap
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from parcours_contracts import TOPIC_OF, topics
from parcours_contracts.events import EventEnvelope
from parcours_runtime import eventloop
from parcours_runtime.body_limit import limit_bodies
from parcours_runtime.consumer import EventConsumer
from parcours_runtime.handlers import Handler
from parcours_runtime.db import create_engine, ensure_schema, ping, session_factory
from parcours_runtime.kafka import ensure_topics, make_producer, wait_for_broker
from parcours_runtime.logs import setup_logging
from parcours_runtime.metrics import Gauges, ServiceMetrics, metrics_route
from parcours_runtime.migrations import alembic_cli, script_location, upgrade
from parcours_runtime.outbox import OutboxRelay
from parcours_runtime.problems import install_problem_handlers
from parcours_runtime.rate_limit import RateLimit, RateLimiter
from parcours_runtime.settings import ServiceSettings
from parcours_runtime.tenancy import tenancy_handlers
from parcours_runtime.tracing import setup_tracing, tracer

log = logging.getLogger(__name__)

# A polled batch keeps its hundreds of events, models and rows alive until it commits, so with the default
# young-generation threshold (700 more container objects than freed) the collector ran every few events and
# walked the same live batch again and again: 2–7 % of each service's CPU (750 young collections for 10 000
# invoices in one channels process). What a batch leaves behind is mostly freed by reference counting; the
# collector is for cycles, and 10 000 keeps it to a few runs per thousand invoices (peak RSS unchanged).
GC_THRESHOLDS = (10_000, 10, 10)


class BackgroundJob(Protocol):
    async def run(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class ServiceContext:
    """Process-wide singletons, built once at start-up and handed to routes and handlers."""

    name: str
    settings: Any
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    http: httpx.AsyncClient
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceDefinition:
    """What one service plugs into the host. `metadata` is what the migrations must produce;
    `migrations` is their folder inside the package `parcours_<name>` (None: no migrations,
    the tables are created from `metadata`, unversioned; for test doubles only)."""

    name: str
    metadata: MetaData
    create_app: Callable[[ServiceContext], FastAPI]
    handlers: Callable[[ServiceContext], dict[type[EventEnvelope], Handler]] = lambda ctx: {}
    background: Callable[[ServiceContext], list[BackgroundJob]] = lambda ctx: []
    on_start: Callable[[ServiceContext], Awaitable[None]] | None = None
    on_stop: Callable[[ServiceContext], Awaitable[None]] | None = None
    migrations: str | None = "store/migrations"
    gauges: Gauges = field(default_factory=dict)  # the service's own metrics, read at each scrape
    rate_limits: Sequence[RateLimit] = ()  # its public routes' limits (rate_limit.py), overridable by settings
    # The event types on the delivery path (their topics, rather): fetched every `consumer_fetch_max_wait_ms`. The
    # service's other topics go to a second consumer in the same group, fetching every
    # `consumer_quiet_fetch_max_wait_ms`: a fetch on a broker that holds it (Tansu) costs by the partitions it
    # covers, and the tracker's eleven topics fetched every 50 ms cost ≈ 120 CPU ms a second, idle. Empty: one
    # consumer takes every topic at `consumer_fetch_max_wait_ms`.
    urgent: frozenset[type[EventEnvelope]] = frozenset()

    def script_location(self) -> str:
        if self.migrations is None:
            raise ValueError(f"{self.name} has no migrations")
        return script_location(f"parcours_{self.name}", self.migrations)


def consumer_lanes(handlers: dict[type[EventEnvelope], Handler], urgent: frozenset[type[EventEnvelope]],
                   settings: ServiceSettings) -> list[tuple[dict[type[EventEnvelope], Handler], int]]:
    """The handlers each of the service's consumers takes, with its fetch wait: the urgent types' topics (every
    type on them goes along: a topic is read by one consumer), then the other topics; one consumer for all when
    nothing, or everything, is urgent."""
    urgent_topics = {TOPIC_OF[event_type] for event_type in urgent}
    fast = {event_type: h for event_type, h in handlers.items() if TOPIC_OF[event_type] in urgent_topics}
    quiet = {event_type: h for event_type, h in handlers.items() if event_type not in fast}
    if not fast or not quiet:
        return [(handlers, settings.consumer_fetch_max_wait_ms)]
    return [(fast, settings.consumer_fetch_max_wait_ms), (quiet, settings.consumer_quiet_fetch_max_wait_ms)]


async def prepare_database(definition: ServiceDefinition, database_url: str) -> None:
    """Bring the schema to what this code expects: Alembic upgrade to head (serialised across replicas)."""
    if definition.migrations is not None:
        await upgrade(database_url, definition.script_location())
        return
    engine = create_engine(database_url, pool_size=1)
    try:
        await ensure_schema(engine, definition.metadata)
    finally:
        await engine.dispose()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # the host owns signals, not uvicorn
        yield


def _health_routes(app: FastAPI, host: "ServiceHost") -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        return {"status": "ok", "service": host.definition.name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz():
        checks = await host.readiness()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


class _TraceHttp:
    """A server span per HTTP request, continuing the caller's trace (W3C headers). Plain ASGI: an
    `@app.middleware("http")` function would add a task and a body stream to every request, which
    cost more than many routes themselves (measured on the tracker's link clicks)."""

    def __init__(self, app, service: str, metrics: ServiceMetrics):
        self.app, self.service, self.metrics = app, service, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        started, status = time.perf_counter(), 500
        with tracer(self.service).start_as_current_span(
            f"{method} {scope['path']}", context=_caller_context(scope["headers"]), kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:
            async def send_with_status(message):
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                await send(message)

            try:
                await self.app(scope, receive, send_with_status)
            finally:
                # The route's template, never the raw path: paths carry ids and link tokens.
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.metrics.observe_http(method, route, status, time.perf_counter() - started)


@functools.cache
def _propagated_headers() -> frozenset[bytes]:
    """The headers the process's propagators read (W3C traceparent, tracestate, baggage by default)."""
    return frozenset(name.lower().encode("latin-1") for name in get_global_textmap().fields)


def _caller_context(raw_headers: list[tuple[bytes, bytes]]):
    """The caller's trace context, decoding only the headers that carry it; None when there are none."""
    wanted = _propagated_headers()
    carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw_headers if name in wanted}
    return extract(carrier) if carrier else None


def _trace_http(app: FastAPI, service: str, metrics: ServiceMetrics) -> None:
    app.add_middleware(_TraceHttp, service=service, metrics=metrics)


class ServiceHost:
    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings):
        self.definition = definition
        self.settings = settings
        self.ctx: ServiceContext | None = None
        self.consumers: list[EventConsumer] = []  # the urgent topics' consumer first (ServiceDefinition.urgent)
        self.relay: OutboxRelay | None = None
        self.jobs: list[BackgroundJob] = []
        self.app: FastAPI | None = None
        self.metrics: ServiceMetrics | None = None
        self._server: _Server | None = None
        self._tasks: list[asyncio.Task] = []

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    async def start(self) -> None:
        s, name = self.settings, self.definition.name
        setup_tracing(name)
        engine = create_engine(s.database_url, pool_size=s.db_pool_size)
        await _retry_until(lambda: prepare_database(self.definition, s.database_url), f"database for {name}")
        await wait_for_broker(s.kafka_bootstrap_servers)
        if s.create_topics:
            await ensure_topics(s.kafka_bootstrap_servers, topics.ALL_WITH_DLQ, s.topic_partitions)
        producer = make_producer(s.kafka_bootstrap_servers, f"parcours-{name}")
        await producer.start()
        self.ctx = ctx = ServiceContext(name=name, settings=s, engine=engine, sessions=session_factory(engine),
                                        producer=producer, http=httpx.AsyncClient(timeout=30))
        if self.definition.on_start:
            await self.definition.on_start(ctx)

        self.relay = OutboxRelay(engine, producer, batch_size=s.outbox_batch_size)
        self._spawn(self.relay.run(), "outbox-relay")
        handlers = {**tenancy_handlers(ctx), **self.definition.handlers(ctx)}
        for lane, (lane_handlers, fetch_max_wait_ms) in enumerate(consumer_lanes(handlers, self.definition.urgent, s)):
            consumer = EventConsumer(
                group_id=name, bootstrap_servers=s.kafka_bootstrap_servers, handlers=lane_handlers,
                sessions=ctx.sessions, engine=engine, producer=producer, max_attempts=s.consumer_max_attempts,
                backoff_seconds=s.consumer_backoff_seconds, batch_size=s.consumer_batch_size,
                session_timeout_ms=s.consumer_session_timeout_ms, fetch_max_wait_ms=fetch_max_wait_ms,
                fetch_min_bytes=s.consumer_fetch_min_bytes,
                max_partition_fetch_bytes=s.consumer_max_partition_fetch_bytes,
            )
            await consumer.start()
            self.consumers.append(consumer)
            self._spawn(consumer.run(), "consumer" if lane == 0 else "consumer-quiet")
        self.jobs = self.definition.background(ctx)
        for job in self.jobs:
            self._spawn(job.run(), type(job).__name__)

        self.app = app = self.definition.create_app(ctx)
        app.state.ctx = ctx
        app.state.host = self
        install_problem_handlers(app)
        limit_bodies(app, s.http_max_body_bytes, s.http_body_timeout_seconds)
        RateLimiter(self.definition.rate_limits, overrides=s.rate_limits, trusted_proxies=s.trusted_proxies,
                    max_keys=s.rate_limit_max_keys).install(app)
        _health_routes(app, self)
        self.metrics = ServiceMetrics(self)
        metrics_route(app, self.metrics)
        _trace_http(app, name, self.metrics)
        self._server = _Server(uvicorn.Config(app, host=s.http_host, port=s.http_port, log_level="warning",
                                              lifespan="off", access_log=False, http="httptools"))
        self._spawn(self._server.serve(), "http")
        while not self._server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # raises why the server could not start
            await asyncio.sleep(0.02)
        # What start-up made (modules, routes, metadata, pools) lives as long as the process: out of the collector's
        # sight, a full collection walks only what came since (≈ 150k objects took it 100 ms, a stall of every request).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info("%s ready on %s", name, self.url)

    def consumer_of(self, event_type: type[EventEnvelope]) -> EventConsumer:
        """The consumer that reads `event_type`'s topic (a service may have two: ServiceDefinition.urgent)."""
        return next(consumer for consumer in self.consumers if TOPIC_OF[event_type] in consumer.topics)

    def _spawn(self, coro, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def readiness(self) -> dict[str, str]:
        assert self.ctx is not None
        checks = {}
        try:
            await asyncio.wait_for(ping(self.ctx.engine), 2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            await asyncio.wait_for(self.ctx.producer.client.fetch_all_metadata(), 2)
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        for task in self._tasks:
            if task.done():
                checks[task.get_name()] = "stopped"
        return checks

    async def wait(self) -> None:
        """Return when any part of the service stops by itself (which is a failure)."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception():
                raise task.exception()
            raise RuntimeError(f"{task.get_name()} stopped unexpectedly")

    async def stop(self) -> None:
        """Graceful: stop HTTP, finish in-flight events, stop jobs, flush the outbox."""
        if self._server is not None:
            self._server.should_exit = True
        for consumer in self.consumers:
            await consumer.stop()
        for job in self.jobs:
            await job.stop()
        if self.relay is not None:
            with contextlib.suppress(Exception):
                await self.relay.stop()
        for task in self._tasks:
            if task.get_name() != "http":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ctx is not None:
            if self.definition.on_stop:
                await self.definition.on_stop(self.ctx)
            await self.ctx.producer.stop()
            await self.ctx.http.aclose()
            await self.ctx.engine.dispose()
        self._tasks.clear()


async def _retry_until(action: Callable[[], Awaitable[None]], what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await action()
        except (OSError, ConnectionError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{what} unreachable: {exc}") from exc
            await asyncio.sleep(0.5)


_AUTOGROUP = "/proc/self/autogroup"


def lower_cpu_priority(increment: int) -> None:
    """Add `increment` to this process's niceness. Linux's autogroup scheduling (on by default) first
    shares the CPU evenly between sessions, and a niceness only counts against processes of the same
    session. A service started in a session of its own (devstack, the benchmarks, any supervisor
    that calls setsid) is alone in it, so its niceness alone yields nothing to the other services:
    the session's niceness is raised too. In someone else's session (a shell's) that one is left
    alone, since it would slow the shell's other processes."""
    os.nice(increment)
    if os.getsid(0) != os.getpid():
        return
    try:
        with open(_AUTOGROUP) as f:  # "/autogroup-123 nice 0"
            current = int(f.read().split()[-1])
        with open(_AUTOGROUP, "w") as f:
            f.write(str(min(19, current + increment)))
    except (OSError, ValueError, IndexError):
        pass  # no autogroup here (another OS, a kernel without it)


def run(definition: ServiceDefinition, settings: ServiceSettings, argv: Sequence[str] | None = None) -> None:
    """`python -m parcours_<name>`: serve until SIGTERM/SIGINT, then stop gracefully (exit 0).
    `… migrate`: upgrade the database to the latest migration and exit (the Kubernetes migration Job).
    `… alembic <command> …`: any Alembic command on this service's migrations and database."""
    args = sys.argv[1:] if argv is None else list(argv)
    setup_logging(definition.name, settings.log_level)
    prog = f"python -m parcours_{definition.name}"
    if args == ["migrate"]:
        asyncio.run(_retry_until(lambda: prepare_database(definition, settings.database_url),
                                 f"database for {definition.name}"))
        raise SystemExit(0)
    if args[:1] == ["alembic"]:
        alembic_cli(args[1:], database_url=settings.database_url, script_location=definition.script_location(),
                    prog=f"{prog} alembic")
        raise SystemExit(0)
    if args:
        raise SystemExit(f"usage: {prog} [migrate | alembic <command> …]")
    if settings.cpu_niceness:
        lower_cpu_priority(settings.cpu_niceness)

    async def main() -> int:
        host = ServiceHost(definition, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await host.start()
        print(f"{definition.name} listening on {host.url}", flush=True)
        stopped = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(host.wait())
        await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if failed.done() and failed.exception():
            log.error("stopping after a failure: %r", failed.exception())
            code = 1
        failed.cancel()
        await host.stop()
        return code

    raise SystemExit(eventloop.run(main()))

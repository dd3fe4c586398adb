"""Prometheus metrics of one service: `GET /metrics`.

What every service has: events consumed (by topic and type), dead letters, events published (by
type, channel and purpose: invoices ingested, dispatched by channel, reminders due, acks,
incidents…), consumer lag per partition, outbox backlog, HTTP requests and their duration.
A service adds its own gauges (e.g. incidents open) through `ServiceDefinition.gauges`, read at
scrape time. Each host has its own registry (tests run several hosts in one process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from parcours_runtime.outbox import outbox_backlog

if TYPE_CHECKING:
    from parcours_runtime.service import ServiceContext, ServiceHost

# name -> (help, async fn(ctx) -> value, or {label value: value} for a gauge labelled `key`)
Gauges = dict[str, tuple[str, Callable[["ServiceContext"], Awaitable[float | dict[str, float]]]]]


class ServiceMetrics:
    def __init__(self, host: "ServiceHost"):
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter("parcours_http_requests", "HTTP requests answered",
                                     ["method", "route", "status"], registry=self.registry)
        self.http_seconds = Histogram("parcours_http_request_seconds", "Time to answer an HTTP request",
                                      ["method", "route"], registry=self.registry,
                                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self._http_children: dict[tuple[str, str, int], tuple] = {}
        self._host = host
        self._scraped: dict[str, float | dict[str, float]] = {}
        self.registry.register(_RuntimeCollector(self))

    async def refresh(self) -> None:
        """Values that need the database or the service, read once per scrape."""
        ctx = self._host.ctx
        assert ctx is not None
        async with ctx.sessions() as session:
            self._scraped["parcours_outbox_backlog"] = await outbox_backlog(session, self._host.relay)
        for name, (_, read) in self._host.definition.gauges.items():
            self._scraped[name] = await read(ctx)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled children, looked up once per (method, route, status): `labels()` costs more than the update.
        children = self._http_children.get((method, route, status))
        if children is None:
            children = self._http_children[(method, route, status)] = (
                self.http_requests.labels(method, route, str(status)), self.http_seconds.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)


class _RuntimeCollector:
    def __init__(self, metrics: ServiceMetrics):
        self._metrics = metrics

    def collect(self):
        host = self._metrics._host
        relay = host.relay
        consumed = CounterMetricFamily("parcours_events_consumed", "Events applied by this service's consumer",
                                       labels=["topic", "type"])
        dead = CounterMetricFamily("parcours_dead_letters", "Events sent to <topic>.dlq by this service",
                                   labels=["topic"])
        lag = GaugeMetricFamily("parcours_consumer_lag", "Records not yet committed behind the partition's end",
                                labels=["topic", "partition"])
        for consumer in host.consumers:  # their topics are their own
            for (topic, event_type), count in sorted(consumer.handled_by.items()):
                consumed.add_metric([topic, event_type], count)
            for topic, count in sorted(consumer.dead_lettered_by.items()):
                dead.add_metric([topic], count)
            for tp, behind in sorted(consumer.lag().items()):
                lag.add_metric([tp.topic, str(tp.partition)], behind)
        published = CounterMetricFamily("parcours_events_published", "Events relayed from the outbox to Kafka",
                                        labels=["type", "channel", "purpose"])
        if relay is not None:
            for labels, count in sorted(relay.published_by.items()):
                published.add_metric(list(labels), count)
        yield from (consumed, dead, lag, published)
        definitions = {"parcours_outbox_backlog": "Events committed but not yet relayed to Kafka",
                       **{name: help_text for name, (help_text, _) in host.definition.gauges.items()}}
        for name, help_text in definitions.items():
            value = self._metrics._scraped.get(name)
            if isinstance(value, dict):
                gauge = GaugeMetricFamily(name, help_text, labels=["key"])
                for key, number in sorted(value.items()):
                    gauge.add_metric([key], number)
                yield gauge
            elif value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)


def metrics_route(app: FastAPI, metrics: ServiceMetrics) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        await metrics.refresh()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

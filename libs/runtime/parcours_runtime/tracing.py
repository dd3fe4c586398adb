"""OpenTelemetry: one tracer provider per process, W3C trace context in Kafka headers."""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable
from functools import cache

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

KafkaHeaders = list[tuple[str, bytes]]


def setup_tracing(service_name: str) -> None:
    """Install an SDK tracer provider unless one is already installed (tests may bring their own).
    Spans are exported over OTLP/HTTP when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
    `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, e.g. to an OpenTelemetry Collector; the exporter
    reads its other standard variables (headers, timeout, compression) itself."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    resource = Resource.create({"service.name": f"parcours-{service_name}"})
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        atexit.register(provider.shutdown)  # the last spans leave with the process
    else:
        # Nowhere to export: spans keep their ids (logs and events still carry the trace) but record nothing,
        # unless the caller's trace is sampled. Recording cost ≈ 7 µs a span, on every request and event.
        provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    trace.set_tracer_provider(provider)


# FastAPI's own (native) telemetry, off in every service: the runtime's middleware makes the server
# span and the HTTP metrics already, and a second span tree per request cost ≈ 10 % of a request's CPU.
FASTAPI_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


@cache
def tracer(name: str = "parcours") -> trace.Tracer:
    """The process's tracer for `name`, made once (it is asked for on every request and event)."""
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """The active context as W3C headers (traceparent, tracestate)."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def context_from_kafka_headers(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    carrier = {k: v.decode("latin-1") for k, v in (headers or ()) if k in ("traceparent", "tracestate")}
    return extract(carrier)

"""Services as real processes export their spans over OTLP/HTTP to a collector (here a receiver
the test runs, decoding the protobuf the way an OpenTelemetry Collector does): one trace id runs
from the ERP's POST in ingest to router's consumer of the event ingest published."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from parcours_devstack.partners import PartnerServer


def otlp_receiver(spans: list[tuple[str, str, str]]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
            for scope_spans in resource_spans.scope_spans:
                spans.extend((service, span.trace_id.hex(), span.name) for span in scope_spans.spans)
        return Response(status_code=200, media_type="application/x-protobuf")

    return app


async def test_one_trace_crosses_service_processes_and_reaches_the_collector(spawn_service, monkeypatch,
                                                                              post_routed_invoice):
    received: list[tuple[str, str, str]] = []
    async with PartnerServer(otlp_receiver(received)) as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # export every 0.2 s rather than 5 s
        ingest, router = spawn_service("ingest"), spawn_service("router")
        await asyncio.gather(asyncio.to_thread(ingest.wait_ready, 120), asyncio.to_thread(router.wait_ready, 120))
        caller_trace = "0af7651916cd43dd8448eb211c80319c"
        await post_routed_invoice(ingest.url, router.url, "otlp", "OTLP-1",
                                  headers={"traceparent": f"00-{caller_trace}-b7ad6b7169203331-01"})

        for _ in range(300):
            services = {service for service, trace_id, _ in received if trace_id == caller_trace}
            if {"parcours-ingest", "parcours-router"} <= services:
                break
            await asyncio.sleep(0.1)
    mine = [(service, name) for service, trace_id, name in received if trace_id == caller_trace]
    assert ("parcours-ingest", "POST /v1/invoices") in mine
    assert ("parcours-router", "consume invoice.received") in mine

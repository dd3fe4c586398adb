"""One trace follows an invoice from the HTTP POST through the outbox, Kafka headers and the
next service's consumer, into the events that consumer publishes."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from parcours_contracts import topics


async def test_trace_context_crosses_services_through_kafka(run_service, spans, kafka, post_routed_invoice):
    ingest = await run_service("ingest")
    router = await run_service("router")
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    await post_routed_invoice(ingest.url, router.url, "trace", "TRACE-1",
                              headers={"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"})

    consumer = AIOKafkaConsumer(topics.DISPATCH_REQUESTED, bootstrap_servers=kafka, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    headers = dict(record.headers)
    assert headers["traceparent"].decode().split("-")[1] == caller_trace, "router's event continues the caller's trace"

    finished = spans.get_finished_spans()
    post_span = next(s for s in finished if s.name == "POST /v1/invoices")
    consume_span = next(s for s in finished if s.name == f"consume {topics.INVOICE_RECEIVED}"
                        and s.attributes.get("parcours.tenant_id") == "trace")
    assert format(post_span.context.trace_id, "032x") == caller_trace
    assert consume_span.context.trace_id == post_span.context.trace_id
    assert consume_span.parent is not None

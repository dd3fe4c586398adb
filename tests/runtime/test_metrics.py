"""Every service answers `GET /metrics` in Prometheus text: events consumed and published (with
channel and purpose), consumer lag, outbox backlog, HTTP requests by route template."""

from __future__ import annotations


import httpx
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


async def test_services_expose_their_flow_in_prometheus_format(run_service, eventually, post_routed_invoice):
    ingest = await run_service("ingest")
    router = await run_service("router")
    await post_routed_invoice(ingest.url, router.url, "metrics", "MET-1")
    async with httpx.AsyncClient(timeout=30) as client:

        async def router_settled() -> dict | None:
            """Published, and the relay's delete of the published row committed (it follows the publish)."""
            found = samples((await client.get(f"{router.url}/metrics")).text)
            if value(found, "parcours_events_published_total", type="dispatch.requested", channel="email_link",
                     purpose="invoice") and value(found, "parcours_outbox_backlog") == 0:
                return found
            return None

        router_metrics = await eventually(router_settled, what="router's dispatch request counted, its outbox empty")
        ingest_metrics = samples((await client.get(f"{ingest.url}/metrics")).text)

    assert value(ingest_metrics, "parcours_events_published_total", type="invoice.received", channel="",
                 purpose="") == 1
    assert value(router_metrics, "parcours_events_consumed_total", topic="invoice.received",
                 type="invoice.received") == 1
    assert value(router_metrics, "parcours_outbox_backlog") == 0
    # By route template, not by path: the customer's reference is not a label.
    assert value(router_metrics, "parcours_http_requests_total", method="PUT", route="/v1/customers/{ref}",
                 status="201") == 1
    assert not any("C1" in str(labels) for _, labels in router_metrics)
    # …a route served plainly (parcours_runtime.plain_routes) too
    assert value(ingest_metrics, "parcours_http_requests_total", method="POST", route="/v1/invoices",
                 status="202") == 1
    lags = [v for (name, _), v in router_metrics.items() if name == "parcours_consumer_lag"]
    assert lags and all(v == 0 for v in lags), "caught up"


async def test_a_service_adds_its_own_gauges_read_at_each_scrape(make_database, kafka):
    from fastapi import FastAPI
    from sqlalchemy import MetaData

    from parcours_devstack.ports import free_port
    from parcours_runtime.service import ServiceDefinition, ServiceHost
    from parcours_runtime.settings import ServiceSettings

    reads = []

    async def open_things(ctx) -> dict[str, int]:
        reads.append(ctx.name)
        return {"not_received": len(reads), "bounced": 0}

    settings = ServiceSettings(environment="test", database_url=make_database("gauge"), kafka_bootstrap_servers=kafka,
                               http_port=free_port(), consumer_session_timeout_ms=2000)
    host = ServiceHost(ServiceDefinition(name="gauged", metadata=MetaData(), create_app=lambda ctx: FastAPI(),
                                         migrations=None, gauges={"things_open": ("Things open", open_things)}),
                       settings)
    await host.start()
    try:
        async with httpx.AsyncClient(base_url=host.url) as client:
            first = samples((await client.get("/metrics")).text)
            second = samples((await client.get("/metrics")).text)
    finally:
        await host.stop()
    assert value(first, "things_open", key="not_received") == 1
    assert value(second, "things_open", key="not_received") == 2, "read again at each scrape"
    assert value(second, "things_open", key="bounced") == 0

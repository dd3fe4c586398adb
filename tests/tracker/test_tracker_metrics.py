"""The tracker's own gauges on /metrics: open incidents by kind, time from dispatch to acknowledgement."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


async def scrape(client) -> dict[tuple[str, str], float]:
    text = (await client.get("/metrics")).text
    return {(sample.name, sample.labels.get("key", "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_time_to_ack_quantiles_come_from_the_invoices_acknowledged(client, publish, flow, consumed,
                                                                         eventually):
    assert not any(name == "parcours_time_to_ack_seconds" for name, _ in await scrape(client)), "none acked yet"
    fast, slow = flow(number="F-FAST"), flow(number="F-SLOW")
    events = [fast.received(), fast.dispatched(minute=2), fast.acked(minute=5),
              slow.received(), slow.dispatched(minute=2), slow.acked(minute=10)]
    await publish(*events)
    await eventually(lambda: consumed(*events), what="the six events consumed")

    gauges = await scrape(client)
    # 3 and 8 minutes: the median interpolates between them.
    assert gauges[("parcours_time_to_ack_seconds", "p50")] == 330.0
    assert 180.0 < gauges[("parcours_time_to_ack_seconds", "p90")] <= 480.0

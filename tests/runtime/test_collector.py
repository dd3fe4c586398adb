"""A started service leaves a polled batch's short-lived objects to reference counting: the cyclic
collector does not walk the live batch over and over while it is being handled."""

from __future__ import annotations

import gc


async def test_a_polled_batchs_worth_of_live_objects_does_not_set_the_collector_off(run_service):
    await run_service("router")
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()  # the young generation starts empty, whatever the test run allocated before
    gc.callbacks.append(count)
    try:
        batch = [{"event_id": n, "rows": [n]} for n in range(4000)]  # 8 000 containers alive at once
    finally:
        gc.callbacks.remove(count)
    assert len(batch) == 4000
    assert collections == [], "with the interpreter's default threshold (700) this ran the collector 11 times"

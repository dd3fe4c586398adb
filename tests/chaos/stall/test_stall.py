"""The broker frozen (SIGSTOP, then SIGCONT) and PostgreSQL restarted under the running services: each
service says it is not ready while its dependency is gone, recovers by itself afterwards, and every
invoice accepted before, during or after is delivered exactly once. The time to recover is measured from
SIGCONT, and from PostgreSQL accepting connections again, until every service is ready and an invoice
posted then has been delivered. `make chaos` runs it (the broker frozen CHAOS_STALL_SECONDS, 30 s there)."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import time
from datetime import date

import httpx

from parcours_devstack import demo
from parcours_devstack.services import SERVICES
from tests.chaos.test_chaos import dead_letters, table

STALL = float(os.environ.get("CHAOS_STALL_SECONDS", "5"))
PROBES = 22  # 20 invoices around the outages, and one after each recovery


async def readiness(client: httpx.AsyncClient, stack) -> dict[str, int]:
    async def one(service: str) -> int:
        try:
            return (await client.get(f"{stack.url(service)}/readyz", timeout=10)).status_code
        except httpx.HTTPError:
            return 0
    return dict(zip(SERVICES, await asyncio.gather(*(one(s) for s in SERVICES))))


async def test_services_ride_out_a_frozen_broker_and_a_database_restart(stack, broker, postgres, kafka, eventually):
    posted: list[str] = []
    timeline: dict[str, float] = {}
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        customer = {"name": "Stall SA", "channels": ["email_link"], "contacts": [{"email": "ap@stall.example"}]}
        assert (await client.put(f"{stack.url('router')}/v1/customers/STALL", json=customer,
                                 headers=stack.auth)).status_code in (200, 201)

        async def post(n: int) -> None:
            body = demo.invoice_body(f"STALL-{n:03d}", {"ref": "STALL", "name": "Stall SA"}, issued=date.today(),
                                     due_in_days=30, lines=[("Ligne", "1", "100.00", "20")])
            headers = {**stack.auth, "Idempotency-Key": f"stall-{n}"}
            for _ in range(300):  # ingest answers 503 while its database is down: the client retries
                try:
                    response = await client.post(f"{stack.url('ingest')}/v1/invoices", json=body, headers=headers)
                    if response.status_code in (202, 409):
                        posted.append(f"STALL-{n:03d}")
                        return
                    assert response.status_code >= 500, response.text
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            raise AssertionError(f"STALL-{n:03d} never accepted")

        async def recovered(since: float, after: str, probe: int) -> tuple[float, float]:
            """Seconds from `since` until every service is ready, and until an invoice posted then is delivered
            (the flow moves again end to end: ingest, broker, router, channels, SMTP)."""
            await eventually(lambda: _all_ready(client, stack), timeout=60, what=f"ready again after {after}")
            ready = time.monotonic() - since
            await post(probe)
            await eventually(lambda: _delivered(stack, f"STALL-{probe:03d}"), timeout=120,
                             what=f"an invoice delivered after {after}", interval=0.2)
            return ready, time.monotonic() - since

        await asyncio.gather(*(post(n) for n in range(5)))

        # The broker freezes: readiness flips, ingest still accepts (the outbox keeps the events).
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            frozen = time.monotonic()
            await asyncio.gather(*(post(n) for n in range(5, 10)))
            flipped = await eventually(lambda: _not_ready(client, stack), timeout=30, what="readiness flips")
            await asyncio.sleep(max(0.0, STALL - (time.monotonic() - frozen)))
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        thawed = time.monotonic()
        timeline["broker frozen"] = thawed - frozen
        after_broker = await recovered(thawed, "the broker", probe=20)

        # PostgreSQL restarts (fast shutdown: connections cut): 503s, then recovery by themselves.
        postgres.process.send_signal(signal.SIGINT)
        postgres.process.wait(30)
        down = time.monotonic()
        lost_db = await eventually(lambda: _not_ready(client, stack), timeout=30, what="readiness flips on the DB")
        db_posts = asyncio.gather(*(post(n) for n in range(10, 15)))
        await asyncio.sleep(1)
        postgres.start()
        back = time.monotonic()
        timeline["database down"] = back - down
        after_database = await recovered(back, "the database", probe=21)
        await db_posts
        await asyncio.gather(*(post(n) for n in range(15, 20)))

        deadline = time.monotonic() + 90
        while len(stack.sink.messages()) < len(posted) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)
        message_ids: dict[str, set[str]] = collections.defaultdict(set)
        for mail in stack.sink.messages():
            message_ids[re.search(r"STALL-\d{3}", mail["subject"]).group(0)].add(mail["message_id"])
    dlq = await dead_letters(kafka)
    missing = set(posted) - set(message_ids)

    def recovery(ready_flowing: tuple[float, float]) -> str:
        return f"{ready_flowing[1]:.1f} s (all ready {ready_flowing[0]:.1f} s, then an invoice delivered)"

    print(table("chaos summary: broker stall and PostgreSQL restart", [
        ("invoices posted", PROBES), ("accepted", len(posted)), ("delivered", len(message_ids)),
        ("duplicates (another Message-ID)", sum(len(ids) - 1 for ids in message_ids.values())),
        ("lost", len(missing)), ("dead letters", sum(dlq.values())),
        ("broker frozen (SIGSTOP)", f"{timeline['broker frozen']:.1f} s, not ready: {', '.join(flipped)}"),
        ("time to recover from SIGCONT", recovery(after_broker)),
        ("PostgreSQL down", f"{timeline['database down']:.1f} s, not ready: {', '.join(lost_db)}"),
        ("time to recover from PostgreSQL back", recovery(after_database)),
        ("elapsed", f"{time.monotonic() - started:.0f} s")]))
    assert sorted(posted) == [f"STALL-{n:03d}" for n in range(PROBES)]
    assert not missing, f"{sorted(missing)} never delivered; dead letters: {dlq}"
    assert all(len(ids) == 1 for ids in message_ids.values()), "and each one once"
    assert not dlq, f"dead letters: {dlq}"


async def _delivered(stack, number: str) -> bool:
    return any(number in mail["subject"] for mail in stack.sink.messages())


async def _not_ready(client, stack) -> list[str] | None:
    return [s for s, status in (await readiness(client, stack)).items() if status != 200] or None


async def _all_ready(client, stack) -> bool:
    return all(status == 200 for status in (await readiness(client, stack)).values())

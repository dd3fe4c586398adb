"""Chaos: a steady load of invoices while randomly chosen services are killed with SIGKILL at random
moments and restarted; then every accepted invoice must reach its recipients exactly once (one
Message-ID per invoice and recipient at the SMTP sink: a resend of the same message after a crash is
counted apart, see tests/e2e/test_e2e_crash.py), the tracker must know each one dispatched, and no
dead letter may be left. A summary table is printed.

`make test` runs a short variant; `make chaos` the long one (CHAOS_INVOICES=20000 CHAOS_KILLS=10).
CHAOS_SEED replays a run's choices; CHAOS_RATE is the load in invoices per second."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta, timezone

import httpx
from aiokafka import AIOKafkaConsumer

from parcours_devstack import demo
from parcours_runtime.dlq import peek

INVOICES = int(os.environ.get("CHAOS_INVOICES", "24"))
KILLS = int(os.environ.get("CHAOS_KILLS", "2"))
RATE = float(os.environ.get("CHAOS_RATE", "12"))
SEED = int(os.environ.get("CHAOS_SEED", str(random.randrange(10**6))))
VICTIMS = ("ingest", "router", "channels", "tracker", "dunning")
CONTACTS = ("ap@chaos.example", "cfo@chaos.example")


@dataclass
class Run:
    accepted: dict[str, str] = field(default_factory=dict)  # invoice number -> invoice id
    refused: list[str] = field(default_factory=list)
    kills: list[tuple[str, float]] = field(default_factory=list)  # service, seconds until ready again
    retries: int = 0


async def post_invoice(client: httpx.AsyncClient, stack, run: Run, number: str) -> None:
    """Post until ingest answers (it may be down): a retry names the same Idempotency-Key."""
    body = demo.invoice_body(number, {"ref": "CHAOS", "name": "Chaos SA"}, issued=date.today(), due_in_days=30,
                             lines=[("Ligne", "1", f"{100 + len(run.accepted) % 900}.00", "20")])
    headers = {**stack.auth, "Idempotency-Key": f"chaos-{number}"}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            response = await client.post(f"{stack.url('ingest')}/v1/invoices", json=body, headers=headers)
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code in (202, 409):
            answer = response.json()
            run.accepted[number] = answer.get("invoice_id") or answer.get("existing_invoice_id")
            return
        if response is not None and response.status_code < 500:
            run.refused.append(f"{number}: {response.status_code} {response.text[:200]}")
            return
        run.retries += 1
        await asyncio.sleep(0.2)
    run.refused.append(f"{number}: ingest never answered")


async def load(client: httpx.AsyncClient, stack, run: Run) -> None:
    """INVOICES posts at RATE per second (each in its own task, so a slow one does not hold the pace)."""
    tasks = []
    for n in range(INVOICES):
        tasks.append(asyncio.create_task(post_invoice(client, stack, run, f"CHAOS-{n:05d}")))
        await asyncio.sleep(1 / RATE)
    await asyncio.gather(*tasks)


async def chaos(stack, run: Run, rng: random.Random, duration: float) -> None:
    """KILLS kill -9 at random moments of the load, each restarted at once by the harness."""
    moments = sorted(rng.uniform(0.1, 0.9) * duration for _ in range(KILLS))
    started = time.monotonic()
    for moment in moments:
        await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
        victim = rng.choice(VICTIMS)
        killed = time.monotonic()
        await stack.restart(victim, crash=True)
        run.kills.append((victim, time.monotonic() - killed))


def by_invoice_and_recipient(mails) -> dict[tuple[str, str], set[str]]:
    """The distinct Message-IDs each (invoice number, recipient) received."""
    pairs: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for mail in mails:
        number = re.search(r"CHAOS-\d{5}", mail["subject"]).group(0)
        for rcpt in mail["rcpt_tos"]:
            pairs[(number, rcpt)].add(mail["message_id"])
    return pairs


async def remind(client: httpx.AsyncClient, stack, run: Run, rng: random.Random, expected: set) -> dict:
    """Dunning's receipt check a week before the due date reminds every invoice (none was opened), while
    channels or router is killed; then dunning itself is killed and its pass run again: each (invoice,
    recipient) must get one reminder, not two."""
    admin = {"Authorization": f"Bearer {demo.ADMIN_TOKEN}"}
    moment = datetime.combine(date.today() + timedelta(days=23), dtime(12, 0), tzinfo=timezone.utc).isoformat()
    sent_before = {m["id"] for m in stack.sink.messages()}

    def reminders() -> dict[tuple[str, str], set[str]]:
        return by_invoice_and_recipient(m for m in stack.sink.messages() if m["id"] not in sent_before)

    async def scheduler_pass() -> None:
        assert (await client.put(f"{stack.url('dunning')}/v1/admin/clock", json={"now": moment},
                                 headers=admin)).status_code == 200  # (a restarted dunning is back on real time)
        assert (await client.post(f"{stack.url('dunning')}/v1/admin/scheduler/run", headers=admin,
                                  timeout=300)).status_code == 200

    await scheduler_pass()
    victim = rng.choice(("channels", "router"))
    killed = time.monotonic()
    await stack.restart(victim, crash=True)
    run.kills.append((victim, time.monotonic() - killed))
    killed = time.monotonic()
    await stack.restart("dunning", crash=True)
    run.kills.append(("dunning", time.monotonic() - killed))
    deadline = time.monotonic() + 60 + len(run.accepted) / 5
    while not expected <= reminders().keys() and time.monotonic() < deadline:
        await scheduler_pass()  # again and again: a pass never reminds twice
        await asyncio.sleep(1)
    await asyncio.sleep(3)
    return reminders()


async def dead_letters(bootstrap: str) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.endswith(".dlq")]
    finally:
        await consumer.stop()
    counts = {topic: len(await peek(bootstrap, topic.removesuffix(".dlq"))) for topic in topics}
    return {topic: count for topic, count in counts.items() if count}


async def dispatched_in_tracker(client: httpx.AsyncClient, stack) -> set[str]:
    numbers, cursor = set(), None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{stack.url('tracker')}/v1/invoices", params=params, headers=stack.auth)).json()
        numbers |= {item["number"] for item in page["items"] if item["first_dispatched_at"]}
        if not (cursor := page["next_cursor"]):
            return numbers


def summary(run: Run, deliveries: dict[tuple[str, str], set[str]], resends: int, lost: set, dlq: dict,
            tracked: int, elapsed: float, reminded: dict, expected: set) -> str:
    duplicates = sum(len(ids) - 1 for ids in deliveries.values())
    recovery = [seconds for _, seconds in run.kills]
    rows = [("seed", SEED), ("invoices posted", INVOICES), ("accepted", len(run.accepted)),
            ("refused", len(run.refused)), ("client retries", run.retries),
            ("kill -9", ", ".join(f"{s} ({t:.1f} s)" for s, t in run.kills) or "none"),
            ("time to recover (max)", f"{max(recovery, default=0):.1f} s"),
            ("delivered (invoice × recipient)", len(deliveries)), ("duplicates (another Message-ID)", duplicates),
            ("resends (same Message-ID)", resends), ("lost (invoice × recipient)", len(lost)),
            ("dispatched in the tracker", tracked), ("dead letters", sum(dlq.values())),
            ("reminders (invoice × recipient)", len(reminded)),
            ("reminders missing", len(expected - reminded.keys())),
            ("reminded twice", sum(1 for ids in reminded.values() if len(ids) > 1)), ("elapsed", f"{elapsed:.0f} s")]
    return table("chaos summary: kill -9 under load", rows)


def table(title: str, rows: list[tuple[str, object]]) -> str:
    """The harness's summary: one line per figure, names aligned."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(["", title, "-" * (width + 24)] + [f"{name:<{width}}  {value}" for name, value in rows])


async def test_kill_9_under_load_loses_nothing_and_sends_nothing_twice(stack, kafka):
    rng = random.Random(SEED)
    run = Run()
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        customer = {"name": "Chaos SA", "channels": ["email_link"], "contacts": [{"email": e} for e in CONTACTS]}
        assert (await client.put(f"{stack.url('router')}/v1/customers/CHAOS", json=customer,
                                 headers=stack.auth)).status_code in (200, 201)
        await asyncio.gather(load(client, stack, run), chaos(stack, run, rng, INVOICES / RATE))
        expected = {(number, rcpt) for number in run.accepted for rcpt in CONTACTS}

        def delivered() -> dict[tuple[str, str], set[str]]:
            return by_invoice_and_recipient(stack.sink.messages())

        deadline = time.monotonic() + 60 + len(run.accepted) / 5
        while not expected <= delivered().keys() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # anything still in flight would show up as a duplicate now
        deliveries = delivered()
        resends = sum(len(m["rcpt_tos"]) for m in stack.sink.messages()) - sum(len(ids) for ids in deliveries.values())
        deadline = time.monotonic() + 30 + len(run.accepted) / 20
        while (tracked := len(await dispatched_in_tracker(client, stack) & set(run.accepted))) < len(run.accepted):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        reminded = await remind(client, stack, run, rng, expected)
    dlq = await dead_letters(kafka)
    lost = expected - deliveries.keys()
    print(summary(run, deliveries, resends, lost, dlq, tracked, time.monotonic() - started, reminded, expected))

    assert not run.refused, run.refused[:5]
    assert len(run.kills) == KILLS + 2
    assert not lost, f"{len(lost)} deliveries lost, e.g. {sorted(lost)[:5]}"
    twice = {pair: ids for pair, ids in deliveries.items() if len(ids) > 1}
    assert not twice, f"sent as two different messages: {dict(list(twice.items())[:5])}"
    assert deliveries.keys() == expected, "nothing but the accepted invoices was sent"
    assert tracked == len(run.accepted), "the tracker saw every accepted invoice dispatched"
    assert not dlq, f"dead letters: {dlq}"
    assert reminded.keys() == expected, f"{len(expected - reminded.keys())} reminders missing"
    reminded_twice = {pair: ids for pair, ids in reminded.items() if len(ids) > 1}
    assert not reminded_twice, f"reminded twice: {dict(list(reminded_twice.items())[:5])}"

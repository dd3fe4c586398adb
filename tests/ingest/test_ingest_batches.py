"""`POST /v1/batches` with a JSON array: 202 and a batch id, then the worker checks each invoice as
`POST /v1/invoices` does and stores the good ones (one invoice.received each); `GET` tells every
item's outcome. A worker killed mid-batch loses nothing and stores nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from parcours_contracts import InvoiceReceived, topics
from parcours_ingest.store.batch_models import BatchRow
from parcours_ingest.store.models import InvoiceRow
from parcours_runtime.outbox import outbox_table

PROBLEM_JSON = "application/problem+json"


def received(events) -> list[InvoiceReceived]:
    return [e for e in events if isinstance(e, InvoiceReceived)]


async def test_json_batch_stores_the_good_invoices_and_reports_each_item(
        ingest, client, acme, make_invoice, read_events, finished_batch, count_rows):
    earlier = make_invoice("B-EARLIER")
    assert (await client.post("/v1/invoices", json=earlier, headers=acme)).status_code == 202
    wrong_total = make_invoice("B-WRONG")
    wrong_total["totals"]["total_incl_tax"] = "999.99"
    no_buyer = make_invoice("B-NO-BUYER")
    del no_buyer["buyer"]
    body = [make_invoice("B-1"), wrong_total, make_invoice("B-EARLIER"), make_invoice("B-2", with_pdf=True),
            make_invoice("B-1"), no_buyer, "not an invoice"]

    response = await client.post("/v1/batches", json=body, headers={**acme, "X-Correlation-ID": "erp-run-7"})

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "pending" and accepted["kind"] == "json" and accepted["total_items"] == 7
    assert response.headers["location"] == f"/v1/batches/{accepted['batch_id']}"
    batch = await finished_batch(client, acme, accepted["batch_id"])
    assert (batch["status"], batch["total_items"], batch["processed_items"], batch["accepted_items"],
            batch["rejected_items"]) == ("done", 7, 7, 2, 5)
    items = batch["items"]
    assert [(i["seq"], i["status"], i["number"]) for i in items] == [
        (0, "accepted", "B-1"), (1, "rejected", "B-WRONG"), (2, "duplicate", "B-EARLIER"), (3, "accepted", "B-2"),
        (4, "duplicate", "B-1"), (5, "rejected", "B-NO-BUYER"), (6, "rejected", None)]
    assert [i["location"] for i in items[:2]] == [{"index": 0}, {"index": 1}]
    assert items[1]["code"] == "arithmetic-error"
    assert {e["pointer"] for e in items[1]["errors"]} == {"/totals/total_incl_tax"}
    assert items[5]["code"] == "validation-error" and items[5]["errors"][0]["pointer"] == "/buyer"
    earlier_id = (await client.post("/v1/invoices", json=earlier, headers=acme)).json()["existing_invoice_id"]
    assert items[2]["errors"][0]["existing_invoice"] == f"/v1/invoices/{earlier_id}"
    assert items[4]["errors"][0]["existing_invoice"] == f"/v1/invoices/{items[0]['invoice_id']}"

    # the accepted ones are invoices like any other: readable, with their PDF, announced once each
    read = await client.get(f"/v1/invoices/{items[3]['invoice_id']}", headers=acme)
    assert read.status_code == 200 and read.json()["number"] == "B-2" and read.json()["has_pdf"] is True
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(received(es)) >= 3)
    by_number = {}
    for event in received(events):
        by_number.setdefault(event.invoice.number, []).append(event)
    assert sorted(by_number) == ["B-1", "B-2", "B-EARLIER"] and all(len(v) == 1 for v in by_number.values())
    assert str(by_number["B-1"][0].invoice_id) == items[0]["invoice_id"]
    assert by_number["B-1"][0].correlation_id == "erp-run-7"
    assert by_number["B-2"][0].invoice.has_pdf is True
    assert await count_rows(ingest, InvoiceRow) == 3

    rejected = (await client.get(f"/v1/batches/{accepted['batch_id']}", headers=acme,
                                 params={"status": "rejected"})).json()["items"]
    assert [i["seq"] for i in rejected] == [1, 5, 6]


async def test_batches_are_the_tenants_own(ingest, client, acme, tenant_key, make_invoice, finished_batch):
    other = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='globex', tenant_name='Globex')}"}
    batch_id = (await client.post("/v1/batches", json=[make_invoice()], headers=acme)).json()["batch_id"]
    await finished_batch(client, acme, batch_id)
    assert (await client.get(f"/v1/batches/{batch_id}", headers=other)).status_code == 404
    assert (await client.get(f"/v1/batches/{uuid.uuid4()}", headers=acme)).status_code == 404
    assert (await client.get(f"/v1/batches/{batch_id}")).status_code == 401


async def test_idempotency_key_replays_the_batch_and_the_list_shows_it(client, acme, make_invoice, finished_batch):
    body = [make_invoice("I-1"), make_invoice("I-2")]
    headers = {**acme, "Idempotency-Key": "erp-lot-42"}
    first = await client.post("/v1/batches", json=body, headers=headers)
    again = await client.post("/v1/batches", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await client.post("/v1/batches", json=body[:1], headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reuse")
    await finished_batch(client, acme, first.json()["batch_id"])
    listed = (await client.get("/v1/batches", headers=acme)).json()
    assert [(b["batch_id"], b["status"], b["accepted_items"]) for b in listed] == [
        (first.json()["batch_id"], "done", 2)]


async def test_refused_batches_change_nothing(ingest, client, acme, count_rows, make_invoice):
    cases = [
        ({"Content-Type": "application/json"}, b'{"number": "not an array"}', 422, "not-an-array"),
        ({"Content-Type": "application/json"}, b"[]", 422, "empty-batch"),
        ({"Content-Type": "application/json"}, b"[{", 400, "malformed-json"),
        ({"Content-Type": "application/xml"}, b"<Invoice/>", 415, "unsupported-media-type"),
        ({"Content-Type": "text/csv"}, b"number\nF-1\n", 422, "validation-error"),  # no ?profile=
        ({"Content-Type": "application/vnd.ms-excel.sheet.macroEnabled.12"}, b"PK", 415, "spreadsheet-with-macros"),
    ]
    for headers, content, status, slug in cases:
        response = await client.post("/v1/batches", content=content, headers={**acme, **headers})
        assert response.status_code == status, (content, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["type"].endswith("/" + slug), response.json()
    assert await count_rows(ingest, BatchRow) == 0


async def test_oversize_batches_are_refused(run_service, tenant_key, make_invoice, count_rows):
    ingest = await run_service("ingest", max_body_bytes=4096, max_batch_items=2)
    headers = {"Authorization": f"Bearer {await tenant_key(ingest)}"}
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        too_big = await client.post("/v1/batches", json=[make_invoice() for _ in range(5)], headers=headers)
        too_many = await client.post("/v1/batches", json=[{}, {}, {}], headers=headers)
    assert (too_big.status_code, too_many.status_code) == (413, 413)
    assert too_many.json()["type"].endswith("/too-many-items")
    assert await count_rows(ingest, BatchRow) == 0


async def test_replicas_share_the_batches_and_store_each_invoice_once(run_service, make_database, tenant_key,
                                                                       make_invoice, finished_batch, read_events):
    database_url = make_database("ingest")
    replicas = [await run_service("ingest", database_url=database_url, batch_chunk_size=10, batch_poll_seconds=0.05)
                for _ in range(2)]
    headers = {"Authorization": f"Bearer {await tenant_key(replicas[0])}"}  # one database: both know the key
    async with httpx.AsyncClient(base_url=replicas[0].url, timeout=30) as first, \
            httpx.AsyncClient(base_url=replicas[1].url, timeout=30) as second:
        batch_ids = [(await client.post("/v1/batches", json=[make_invoice(f"R{b}-{n:02d}") for n in range(40)],
                                        headers=headers)).json()["batch_id"]
                     for b, client in enumerate([first, second, first, second])]
        for batch_id in batch_ids:
            batch = await finished_batch(second, headers, batch_id)
            assert (batch["status"], batch["accepted_items"], batch["rejected_items"]) == ("done", 40, 0)
    async with replicas[0].ctx.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(InvoiceRow))).scalar_one() == 160
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(received(es)) >= 160)
    assert len({event.invoice.number for event in received(events)}) == 160


async def test_a_worker_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
        spawn_service, make_database, make_invoice, read_events, eventually, finished_batch):
    database_url = make_database("ingest")
    settings = {"BATCH_CHUNK_SIZE": "20", "BATCH_LEASE_SECONDS": "1", "BATCH_POLL_SECONDS": "0.2"}
    first = spawn_service("ingest", database_url=database_url, extra=settings)
    await asyncio.to_thread(first.wait_ready)
    engine = create_async_engine(database_url)

    async def scalar(query):
        async with engine.connect() as connection:
            return (await connection.execute(query)).scalar_one()

    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            issued = (await client.post("/v1/tenants", json={"name": "Crash SAS", "tenant_id": "crash"},
                                        headers={"Authorization": "Bearer dev-admin-token"})).json()
            headers = {"Authorization": f"Bearer {issued['api_key']}"}

            async def authenticated():
                return (await client.get(f"/v1/batches/{uuid.uuid4()}", headers=headers)).status_code == 404
            await eventually(authenticated, what="the key is known")
            body = [make_invoice(f"K-{n:04d}") for n in range(400)]
            batch_id = (await client.post("/v1/batches", json=body, headers=headers)).json()["batch_id"]

        async def midway():
            return 0 < await scalar(select(BatchRow.processed_items)) < 400
        await eventually(midway, what="the batch half done", interval=0.01)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
        stopped_at = await scalar(select(BatchRow.processed_items))
        assert 0 < stopped_at < 400

        second = spawn_service("ingest", database_url=database_url, extra=settings)
        await asyncio.to_thread(second.wait_ready)
        async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:
            batch = await finished_batch(client, headers, batch_id, limit=10_000)
        assert (batch["status"], batch["processed_items"], batch["accepted_items"]) == ("done", 400, 400)
        assert [item["seq"] for item in batch["items"]] == list(range(400))
        assert await scalar(select(func.count()).select_from(InvoiceRow)) == 400
        assert await scalar(select(BatchRow.attempts)) == 2

        async def relayed():
            return await scalar(select(func.count()).select_from(outbox_table)) == 0
        await eventually(relayed, what="the outbox relayed")
        events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(received(es)) >= 400)
        event_ids: dict[str, set] = {}
        for event in received(events):
            event_ids.setdefault(event.invoice.number, set()).add(event.event_id)
        # one event per invoice (the relay may publish an event twice after a crash: same event id, deduplicated)
        assert sorted(event_ids) == [f"K-{n:04d}" for n in range(400)]
        assert all(len(ids) == 1 for ids in event_ids.values())
    finally:
        await engine.dispose()


async def test_a_fresh_databases_first_import_gives_the_invoices_their_first_statistics(
        ingest, client, acme, make_invoice, finished_batch, eventually):
    """Until then PostgreSQL looks duplicate keys up through the tenant index, every row of the tenant each time
    (parcours_runtime.table_stats): a first import of thousands read quadratically."""
    body = [make_invoice(f"STATS-{i:03d}") for i in range(120)]
    accepted = (await client.post("/v1/batches", json=body, headers=acme)).json()
    assert (await finished_batch(client, acme, accepted["batch_id"]))["accepted_items"] == 120

    async def analysed() -> bool:
        async with ingest.ctx.engine.connect() as conn:
            return bool((await conn.execute(text(
                "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'invoices'"
            ))).scalar_one())

    await eventually(analysed, what="first statistics of invoices", timeout=15)

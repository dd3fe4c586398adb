"""Driving the real services: a tenant and customers, invoices posted through the ingest API
(flat out, or paced), and an observer that reads the services' databases to see them arrive.

Reading the channels and tracker databases is the benchmark's privilege as an observer;
no service reads another's database.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

import asyncpg
import httpx

from bench.http_load import Pool
from parcours_devstack import demo

TENANT_ID = "bench"
CUSTOMERS = 10


@dataclass
class Posted:
    """One POST as the client saw it (wall-clock seconds)."""

    index: int
    sent_at: float
    answered_at: float
    status: int
    invoice_id: str | None


@dataclass
class PostRun:
    posts: list[Posted] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0
    batches: list[tuple[str, int]] = field(default_factory=list)  # (batch id, index of its first invoice)

    @property
    def accepted(self) -> list[Posted]:
        return [p for p in self.posts if p.status == 202]

    def errors(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.posts:
            if p.status != 202:
                counts[str(p.status)] = counts.get(str(p.status), 0) + 1
        return counts


async def setup_tenant(urls: dict[str, str]) -> str:
    """A tenant with CUSTOMERS customers on `email_link`, one contact each; returns the API key."""
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{urls['ingest']}/v1/tenants", json={"name": "Bench SARL", "tenant_id": TENANT_ID},
                                    headers={"Authorization": f"Bearer {demo.ADMIN_TOKEN}"})
        created.raise_for_status()
        key = created.json()["api_key"]
    for service, path in (("ingest", "/v1/invoices/00000000-0000-0000-0000-000000000000"),
                          ("router", "/v1/customers"), ("tracker", "/v1/invoices")):
        await demo.wait_until_known(urls[service], path, key)
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(CUSTOMERS):
            body = {"name": f"Client {n} SAS", "channels": ["email_link"], "language": "fr",
                    "contacts": [{"email": f"compta{n}@client{n}.example", "name": "Comptabilité"}]}
            put = await client.put(f"{urls['router']}/v1/customers/BENCH-{n}", json=body,
                                   headers={"Authorization": f"Bearer {key}"})
            put.raise_for_status()
    return key


def invoice_bodies(prefix: str, count: int) -> list[bytes]:
    """`count` valid invoices, serialised up front so the driver spends nothing on them while timing."""
    today = date.today()
    bodies = []
    for i in range(count):
        customer = {"ref": f"BENCH-{i % CUSTOMERS}", "name": f"Client {i % CUSTOMERS} SAS"}
        body = demo.invoice_body(f"{prefix}-{i:06d}", customer, issued=today, due_in_days=30,
                                 lines=[("Prestation de conseil", "2", "500.00", "20"), ("Frais", "1", "42.50", "20")])
        bodies.append(json.dumps(body).encode())
    return bodies


def _client(url: str, key: str, concurrency: int) -> Pool:
    """The driver's connections to ingest: the benchmarks' minimal keep-alive client, which costs the box a
    fraction of what httpx would (in a paced run, one POST per invoice, httpx cost more than ingest itself)."""
    return Pool(url, concurrency, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})


_REFUSED = (OSError, EOFError, asyncio.IncompleteReadError, ValueError)  # connection lost, or an answer not JSON


async def _post(client: Pool, index: int, body: bytes) -> Posted:
    sent = time.time()
    try:
        status, answer = await client.exchange("/v1/invoices", body)
        invoice_id = json.loads(answer).get("invoice_id") if status == 202 else None
    except _REFUSED:
        status, invoice_id = 0, None
    return Posted(index, sent, time.time(), status, invoice_id)


async def post_flat_out(url: str, key: str, bodies: list[bytes], concurrency: int) -> PostRun:
    """Every body, `concurrency` requests in flight at all times."""
    run = PostRun()
    queue = iter(enumerate(bodies))

    async def worker(client: Pool) -> None:
        for index, body in queue:
            run.posts.append(await _post(client, index, body))

    client = _client(url, key, concurrency)
    run.started_at = time.time()
    await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    run.finished_at = time.time()
    client.close()
    return run


async def _post_batch(client: Pool, run: PostRun, first: int, chunk: list[bytes]) -> None:
    """`chunk` (the bodies from index `first`) as one JSON array to `/v1/batches`: one Posted per invoice,
    answered when the batch's 202 came back; the invoice ids are filled in by `resolve_batches`."""
    sent = time.time()
    try:
        status, answer = await client.exchange("/v1/batches", b"[" + b",".join(chunk) + b"]")
        batch_id = json.loads(answer).get("batch_id") if status == 202 else None
    except _REFUSED:
        status, batch_id = 0, None
    answered = time.time()
    run.posts.extend(Posted(first + i, sent, answered, status, None) for i in range(len(chunk)))
    if batch_id:
        run.batches.append((batch_id, first))


async def post_batches(url: str, key: str, bodies: list[bytes], batch_size: int, concurrency: int) -> PostRun:
    """The bodies as JSON arrays of `batch_size` to `/v1/batches`, `concurrency` in flight."""
    run = PostRun()
    chunks = iter(range(0, len(bodies), batch_size))

    async def worker(client: Pool) -> None:
        for first in chunks:
            await _post_batch(client, run, first, bodies[first:first + batch_size])

    client = _client(url, key, concurrency)
    run.started_at = time.time()
    await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    run.finished_at = time.time()
    client.close()
    return run


async def resolve_batches(url: str, key: str, run: PostRun) -> None:
    """Fill in the invoice ids of a batch run's posts from the batches' item outcomes; an item the
    batch refused turns its post into a 422."""
    by_index = {p.index: p for p in run.posts}
    client = _client(url, key, 1)
    for batch_id, first in run.batches:
        read = json.loads((await client.exchange(f"/v1/batches/{batch_id}"))[1])
        for item in read.get("items", []):
            post = by_index[first + item["location"]["index"]]
            if item["status"] == "accepted":
                post.invoice_id = item["invoice_id"]
            else:
                post.status = 422
    client.close()


async def post_paced(url: str, key: str, bodies: list[bytes], rate: float, max_in_flight: int,
                     batch_size: int = 1) -> PostRun:
    """Open loop: body i leaves at start + i/rate (if fewer than `max_in_flight` are pending). With `batch_size`
    above 1, the bodies leave `batch_size` at a time to `/v1/batches` (an ERP's export run), at the same rate of
    invoices; their ids then come from `resolve_batches`."""
    run = PostRun()
    slots = asyncio.Semaphore(max_in_flight)

    async def one(client: Pool, first: int) -> None:
        async with slots:
            if batch_size == 1:
                run.posts.append(await _post(client, first, bodies[first]))
            else:
                await _post_batch(client, run, first, bodies[first:first + batch_size])

    client = _client(url, key, max_in_flight)
    run.started_at = start = time.time()
    tasks = []
    for first in range(0, len(bodies), batch_size):
        delay = start + first / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(client, first)))
    await asyncio.gather(*tasks)
    run.finished_at = time.time()
    client.close()
    return run


class Observer:
    """Counts invoices sent (channels ledger) and tracked as dispatched (tracker journal), in the
    services' own databases, every `interval` seconds."""

    def __init__(self, channels_dsn: str, tracker_dsn: str, interval: float = 0.5):
        self._dsns = {"channels": channels_dsn, "tracker": tracker_dsn}
        self.interval = interval
        self._conns: dict[str, asyncpg.Connection] = {}
        self.series: list[dict] = []
        self._journal_max = 0
        self._dispatched_ids: set[int] = set()
        self.queries = 0  # our own transactions in the observed databases, to subtract from their stats

    async def __aenter__(self) -> "Observer":
        for name, dsn in self._dsns.items():
            self._conns[name] = await asyncpg.connect(dsn)
        return self

    async def __aexit__(self, *exc) -> None:
        for conn in self._conns.values():
            await conn.close()

    async def counts(self, *, whole: bool = False) -> tuple[int, int]:
        """(sent, tracked as dispatched) so far. The journal is read incrementally by id (with a window
        for rows committed out of order), so that watching does not cost a scan of it twice a second;
        `whole` reads all of it (a row committed further out of order than the window is then counted)."""
        self.queries += 1
        sent = await self._conns["channels"].fetchval("SELECT count(*) FROM sends WHERE state = 'sent'")
        rows = await self._conns["tracker"].fetch(
            "SELECT id FROM journal WHERE id > $1 AND kind = 'dispatched'",
            0 if whole else max(0, self._journal_max - 200))
        for row in rows:
            self._dispatched_ids.add(row["id"])
            self._journal_max = max(self._journal_max, row["id"])
        self._journal_max = max(self._journal_max, await self._conns["tracker"].fetchval(
            "SELECT coalesce(max(id), 0) FROM journal"))
        return sent, len(self._dispatched_ids)

    async def wait_for(self, total: int | Callable[[], int], *, stall_seconds: float = 60, alive=lambda: True) -> bool:
        """Until `total` invoices are tracked as dispatched (a callable: the target as it stands, e.g. once
        the POSTs that failed are known); False if nothing moved for `stall_seconds`."""
        last_progress, last = time.time(), (-1, -1)
        while True:
            sent, tracked = await self.counts(whole=time.time() - last_progress > 2)
            now = time.time()
            self.series.append({"t": round(now, 3), "sent": sent, "tracked": tracked})
            if tracked >= (total() if callable(total) else total):
                return True
            if (sent, tracked) != last:
                last, last_progress = (sent, tracked), now
            elif now - last_progress > stall_seconds or not alive():
                return False
            await asyncio.sleep(self.interval)

    async def dispatched_at(self, invoice_ids: list[str]) -> dict[str, dict[str, float]]:
        """Per invoice: when channels marked it sent and when the tracker recorded it dispatched (epoch s)."""
        self.queries += 1
        ids = [UUID(i) for i in invoice_ids]
        sent = await self._conns["channels"].fetch(
            "SELECT invoice_id, max(extract(epoch FROM updated_at)) AS at FROM sends "
            "WHERE state = 'sent' AND invoice_id = ANY($1::uuid[]) GROUP BY invoice_id", ids)
        tracked = await self._conns["tracker"].fetch(
            "SELECT invoice_id, min(extract(epoch FROM recorded_at)) AS at FROM journal "
            "WHERE kind = 'dispatched' AND invoice_id = ANY($1::uuid[]) GROUP BY invoice_id", ids)
        out: dict[str, dict[str, float]] = {}
        for name, rows in (("sent", sent), ("tracked", tracked)):
            for row in rows:
                out.setdefault(str(row["invoice_id"]), {})[name] = float(row["at"])
        return out


async def database_stats(server_dsn: str) -> dict[str, dict[str, int]]:
    """Cumulative transaction and row counters of every service database (pg_stat_database)."""
    conn = await asyncpg.connect(server_dsn)
    try:
        rows = await conn.fetch(
            "SELECT datname, xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched "
            "FROM pg_stat_database WHERE datname LIKE 'parcours_%'")
    finally:
        await conn.close()
    return {row["datname"].removeprefix("parcours_"): {k: int(v) for k, v in row.items() if k != "datname"}
            for row in rows}


def per_invoice(before: dict, after: dict, invoices: int, observer_queries: dict[str, int]) -> dict:
    """Transactions and rows per invoice, by service database, between two snapshots."""
    out = {}
    for db, end in after.items():
        start = before.get(db, {})
        delta = {k: v - start.get(k, 0) for k, v in end.items()}
        delta["xact_commit"] -= observer_queries.get(db, 0)
        out[db] = {"transactions": round((delta["xact_commit"] + delta["xact_rollback"]) / invoices, 2),
                   "rollbacks": round(delta["xact_rollback"] / invoices, 2),
                   "rows_written": round((delta["tup_inserted"] + delta["tup_updated"] + delta["tup_deleted"]) / invoices, 2),
                   "rows_fetched": round(delta["tup_fetched"] / invoices, 2)}
    return out


async def table_stats(database_dsn: str) -> list[dict]:
    """Per table: scans and rows read by each access path, rows written (pg_stat_user_tables)."""
    conn = await asyncpg.connect(database_dsn)
    try:
        rows = await conn.fetch(
            "SELECT relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, n_tup_ins, n_tup_upd, n_tup_del, "
            "n_live_tup FROM pg_stat_user_tables ORDER BY coalesce(idx_tup_fetch, 0) + seq_tup_read DESC")
        indexes = await conn.fetch(
            "SELECT relname, indexrelname, idx_scan, idx_tup_read, idx_tup_fetch FROM pg_stat_user_indexes "
            "WHERE idx_scan > 0 ORDER BY idx_tup_read DESC")
    finally:
        await conn.close()
    by_table: dict[str, list] = {}
    for index in indexes:
        by_table.setdefault(index["relname"], []).append(
            {"index": index["indexrelname"], "scans": int(index["idx_scan"]), "tuples_read": int(index["idx_tup_read"])})
    return [{**{k: (v if k == "relname" else int(v or 0)) for k, v in row.items()},
             "indexes": by_table.get(row["relname"], [])} for row in rows]

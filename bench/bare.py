"""The bare pipeline: Parcours' Kafka hops with nothing but plumbing, as the yardstick the real
flow is measured against in the same run.

Stages (one asyncio process, aiokafka, asyncpg):

    source ──invoice.received──▶ router ──dispatch.requested──▶ channels ──invoice.dispatched──▶ tracker
                                                         (SMTP send each)

- source: per chunk of `batch` invoices, one transaction INSERTs their ids, then they are
  produced (the stand-in for ingest's store-and-announce);
- every consumer: one `getmany(max_records=batch)`, one transaction INSERTing the batch's ids,
  produce to the next topic and wait for the acks, then commit offsets (manual, after the DB);
- channels: before its transaction, one SMTP message per invoice to the sink over
  `smtp_concurrency` connections (kept open with `--smtp-mode pooled`, one per message with
  `per-message`, which is what the channels service does today).

With `--fanout` the consumers that the real flow also feeds hang off the same topics
(tracker ← invoice.received and dispatch.requested, dunning ← invoice.received and
invoice.dispatched), each doing one INSERT transaction per batch.

With `--floor` every hop also does what the architecture fixes for each service, whatever its
business: the messages are the contract events (`parcours_contracts`: InvoiceReceived →
DispatchRequested → InvoiceDispatched, parsed and validated by each consumer, built and
serialised by each producer); each stage has a schema of its own (a service's database) with
the runtime's inbox and outbox tables; its transaction claims the batch's event ids in the inbox
and writes the events it raises to the outbox, which are produced once it commits and then
deleted (the runtime's own statements, `parcours_runtime.inbox` / `.outbox`). The source does
the same as ingest: its invoices and their events in one transaction. Nothing else: no routing,
rendering, ledger, journal or projection. The gap between this and the plain pipeline is the
architecture's own cost; the gap between this and Parcours is the business logic's.

`python -m bench.bare --bootstrap H:P --dsn postgresql://… --smtp-port P --invoices N` prints one
JSON line with the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass, field

import aiosmtplib
import asyncpg
from aiokafka import AIOKafkaConsumer
import sqlalchemy
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from parcours_contracts import (
    DispatchRequested, InvoiceDispatched, InvoiceReceived, InvoiceSummary, Recipient, SentMessage,
)
from parcours_contracts.events import InvoiceEvent, parse_event
from parcours_runtime import eventloop
from parcours_runtime.inbox import claim_many_on, inbox_table
from parcours_runtime.kafka import ensure_topics, make_producer
from parcours_runtime.outbox import (
    OutboxRow, delete_rows, insert_into_outbox, outbox_table, produce, stage as staged,
)

HOPS = ("invoice.received", "dispatch.requested", "invoice.dispatched")
PAYLOAD_FILLER = "x" * 700  # a real InvoiceReceived / DispatchRequested is 0.7–1.2 kB of JSON


@dataclass
class Stage:
    name: str
    source: str  # topic consumed
    sink: str | None = None  # topic produced, if any
    smtp: bool = False
    done: int = 0
    batches: int = 0
    last_commit: float = 0.0
    seconds: dict[str, float] = field(default_factory=lambda: {"poll": 0.0, "smtp": 0.0, "db": 0.0, "produce": 0.0,
                                                                 "commit": 0.0})


def mail_template(size: int) -> bytes:
    """A multipart/alternative text + HTML message, quoted-printable, about `size` bytes; `{ID}` marks the id."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "Parcours <invoices@parcours.localhost>"
    message["To"] = "Comptabilité <compta@bench.example>"
    message["Subject"] = "Facture {ID} de Bench SARL"
    message["Message-ID"] = "<{ID}@parcours.localhost>"
    text = "Bonjour,\n\nVotre facture est disponible : http://127.0.0.1/l/{ID}\n\n"
    message.set_content(text + "Lorem ipsum dolor sit amet. " * max(1, size // 3 // 28), cte="quoted-printable")
    html = "<p>Bonjour,</p><p><a href=\"http://127.0.0.1/l/{ID}\">Votre facture</a></p>"
    message.add_alternative(html + "<p>Lorem ipsum dolor sit amet.</p>" * max(1, size * 2 // 3 // 34),
                            subtype="html", cte="quoted-printable")
    return message.as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


class Mailer:
    """`concurrency` SMTP sessions at once, pooled (kept open) or one connection per message."""

    def __init__(self, port: int, concurrency: int, mode: str, template: bytes):
        self._port, self._concurrency, self._mode, self._template = port, concurrency, mode, template
        self._pool: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(concurrency)
        self.sent = 0

    async def start(self) -> None:
        if self._mode == "pooled":
            for _ in range(self._concurrency):
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self._port, local_hostname="parcours.localhost")
                await client.connect()
                self._pool.put_nowait(client)

    async def stop(self) -> None:
        while not self._pool.empty():
            client = self._pool.get_nowait()
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                pass

    async def send(self, invoice_id: bytes) -> None:
        raw = self._template.replace(b"{ID}", invoice_id)
        if self._mode == "pooled":
            client = await self._pool.get()
            try:
                await client.sendmail("invoices@parcours.localhost", ["compta@bench.example"], raw)
            finally:
                self._pool.put_nowait(client)
        else:
            async with self._slots:
                await aiosmtplib.send(raw, sender="invoices@parcours.localhost", recipients=["compta@bench.example"],
                                      hostname="127.0.0.1", port=self._port, local_hostname="parcours.localhost")
        self.sent += 1

    async def send_all(self, ids: list[bytes]) -> None:
        await asyncio.gather(*(self.send(i) for i in ids))


class BarePipeline:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        run = uuid.uuid4().hex[:8]
        self.topics = {hop: f"bench.bare.{run}.{hop}" for hop in HOPS}
        self.stages = [
            Stage("router", self.topics["invoice.received"], self.topics["dispatch.requested"]),
            Stage("channels", self.topics["dispatch.requested"], self.topics["invoice.dispatched"], smtp=True),
            Stage("tracker", self.topics["invoice.dispatched"]),
        ]
        if args.fanout:
            self.stages += [
                Stage("tracker-received", self.topics["invoice.received"]),
                Stage("tracker-requested", self.topics["dispatch.requested"]),
                Stage("dunning-received", self.topics["invoice.received"]),
                Stage("dunning-dispatched", self.topics["invoice.dispatched"]),
            ]
        self.finished = asyncio.Event()
        self.t0 = 0.0
        self.latencies_ms: list[float] = []  # source → tracker committed, per invoice

    async def run(self) -> dict:
        a = self.args
        await ensure_topics(a.bootstrap, list(self.topics.values()), a.partitions)
        self._pool = pool = await asyncpg.create_pool(a.dsn, min_size=len(self.stages) + 1, max_size=len(self.stages) + 1)
        async with pool.acquire() as conn:
            for stage in ["source", *(s.name for s in self.stages)]:
                await conn.execute(f'CREATE TABLE IF NOT EXISTS "bare_{stage}" (id text PRIMARY KEY, '
                                   f'at timestamptz NOT NULL DEFAULT now())')
                await conn.execute(f'TRUNCATE "bare_{stage}"')
                if a.floor:
                    await _floor_schema(conn, stage)
        producer = make_producer(a.bootstrap, "bench-bare")
        await producer.start()
        template = mail_template(a.mail_bytes)
        mailer = Mailer(a.smtp_port, a.smtp_concurrency, a.smtp_mode, template)
        await mailer.start()
        consumers = []
        for stage in self.stages:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=a.bootstrap, group_id=f"bench-bare-{stage.name}-{uuid.uuid4().hex[:6]}",
                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=a.batch,
                session_timeout_ms=2000, heartbeat_interval_ms=500, fetch_max_wait_ms=a.fetch_max_wait_ms)
            await consumer.start()
            consumer.subscribe([stage.source])
            consumers.append(consumer)
        tasks = [asyncio.create_task(self._consume(stage, consumer, pool, producer, mailer))
                 for stage, consumer in zip(self.stages, consumers)]
        deadline = time.monotonic() + 60
        while not all(c.assignment() for c in consumers):  # every group joined before the clock starts
            if time.monotonic() > deadline:
                raise TimeoutError("bare consumers never got partitions")
            await asyncio.sleep(0.05)
        self.t0 = time.time()
        source_seconds = await (self._paced_source(producer) if a.pace else self._source(pool, producer))
        try:
            await asyncio.wait_for(self.finished.wait(), timeout=a.timeout)
            result = self._result(source_seconds, template, mailer)
            if a.hold:
                # Everything stays open (this process, its database backends) while the caller reads their CPU.
                print(json.dumps(result), flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for consumer in consumers:
                await consumer.stop()
            await mailer.stop()
            await producer.stop()
            await pool.close()
        return result

    def _result(self, source_seconds: float, template: bytes, mailer: "Mailer") -> dict:
        a = self.args
        end = max(s.last_commit for s in self.stages)
        last = self.stages[2]
        return {
            "invoices": a.invoices,
            "hops": list(HOPS),
            "fanout": a.fanout,
            "floor": a.floor,
            "partitions": a.partitions,
            "batch": a.batch,
            "smtp_concurrency": a.smtp_concurrency,
            "smtp_mode": a.smtp_mode,
            "mail_bytes": len(template),
            "seconds": round(last.last_commit - self.t0, 3),
            "seconds_all_stages": round(end - self.t0, 3),
            "rate": round(a.invoices / (last.last_commit - self.t0), 1),
            "source_seconds": round(source_seconds, 3),
            "mails_sent": mailer.sent,
            "pace": a.pace,
            "fetch_max_wait_ms": a.fetch_max_wait_ms,
            "latency_ms": _quantiles(self.latencies_ms) if a.pace else None,
            "stages": {s.name: {"done": s.done, "batches": s.batches, "mean_batch": round(s.done / max(1, s.batches), 1),
                                "seconds": {k: round(v, 3) for k, v in s.seconds.items()}} for s in self.stages},
        }

    async def _source(self, pool: asyncpg.Pool, producer) -> float:
        """Insert and announce the invoices chunk by chunk, as fast as the broker takes them."""
        a = self.args
        topic = self.topics["invoice.received"]
        started = time.time()
        async with pool.acquire() as conn:
            if a.floor:
                await _enter_schema(conn, "source")
            for start in range(0, a.invoices, a.batch):
                ids = [uuid.uuid4() for _ in range(start, min(start + a.batch, a.invoices))]
                async with conn.transaction():
                    await conn.execute('INSERT INTO "bare_source"(id) SELECT unnest($1::text[])',
                                       [str(i) for i in ids])
                    rows = await insert_into_outbox(conn, [staged(_received(i)) for i in ids]) if a.floor else None
                if rows is None:
                    futures = [await producer.send(topic, _payload(str(i)), key=str(i).encode()) for i in ids]
                    await asyncio.gather(*futures)
                else:
                    await _publish(conn, producer, topic, rows)
        return time.time() - started

    async def _paced_source(self, producer) -> float:
        """One invoice at a time at `pace` per second (open loop), each its own INSERT transaction,
        as ingest does per POST; the latency of each is measured at the tracker stage."""
        a = self.args
        topic = self.topics["invoice.received"]
        started = time.time()
        pending = []
        async with self._pool.acquire() as conn:
            for n in range(a.invoices):
                delay = started + n / a.pace - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                invoice_id = uuid.uuid4().hex
                await conn.execute('INSERT INTO "bare_source"(id) VALUES ($1)', invoice_id)
                pending.append(await producer.send(topic, _payload(invoice_id), key=invoice_id.encode()))
        await asyncio.gather(*pending)
        return time.time() - started

    async def _consume(self, stage: Stage, consumer: AIOKafkaConsumer, pool: asyncpg.Pool, producer,
                       mailer: Mailer) -> None:
        table = f'"bare_{stage.name}"'
        clock = time.perf_counter
        floor = self.args.floor
        async with pool.acquire() as conn:
            if floor:
                await _enter_schema(conn, stage.name)
            while True:
                t = clock()
                batch = await consumer.getmany(timeout_ms=500, max_records=self.args.batch)
                records = [r for rs in batch.values() for r in rs]
                stage.seconds["poll"] += clock() - t
                if not records:
                    continue
                ids = [r.key for r in records]
                events = [parse_event(r.value) for r in records] if floor else []
                if stage.smtp:
                    t = clock()
                    await mailer.send_all(ids)
                    stage.seconds["smtp"] += clock() - t
                t = clock()
                async with conn.transaction():
                    if floor:
                        fresh = await claim_many_on(conn, stage.name, [e.event_id for e in events])
                        events = [e for e in events if e.event_id in fresh]
                    await conn.execute(f"INSERT INTO {table}(id) SELECT unnest($1::text[])",
                                       [i.decode() for i in ids])
                    rows = await insert_into_outbox(conn, [staged(_next(e)) for e in events]) \
                        if floor and stage.sink else None
                stage.seconds["db"] += clock() - t
                if stage.sink:
                    t = clock()
                    if rows is None:
                        futures = [await producer.send(stage.sink, r.value, key=r.key) for r in records]
                        await asyncio.gather(*futures)
                    else:
                        await _publish(conn, producer, stage.sink, rows)
                    stage.seconds["produce"] += clock() - t
                t = clock()
                await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
                stage.seconds["commit"] += clock() - t
                stage.done += len(records)
                stage.batches += 1
                stage.last_commit = time.time()
                if stage.name == "tracker" and self.args.pace:
                    self.latencies_ms += [1000 * (stage.last_commit - json.loads(r.value)["sent_at"]) for r in records]
                if all(s.done >= self.args.invoices for s in self.stages):
                    self.finished.set()


async def _floor_schema(conn: asyncpg.Connection, stage: str) -> None:
    """A stage's own schema (as a service's own database) with the runtime's inbox and outbox tables."""
    schema = f"bare_{stage}"
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    for table in (inbox_table, outbox_table):
        await conn.execute(str(CreateTable(table.to_metadata(_FLOOR_METADATA, schema=schema))
                               .compile(dialect=postgresql.dialect())))


async def _enter_schema(conn: asyncpg.Connection, stage: str) -> None:
    """The runtime's statements name `inbox` and `outbox` unqualified: this stage's are found first."""
    await conn.execute(f'SET search_path TO "bare_{stage}", public')


async def _publish(conn: asyncpg.Connection, producer, topic: str, rows: list[OutboxRow]) -> None:
    """As the relay does once the transaction committed: produce the rows, wait for the acks, delete them
    (to this run's topic, not the contract's)."""
    await produce(producer, rows, topic=topic)
    await delete_rows(conn, [row.id for row in rows])


def _received(invoice_id: uuid.UUID) -> InvoiceReceived:
    return InvoiceReceived(tenant_id="bench", invoice_id=invoice_id, correlation_id=f"bare-{invoice_id.hex[:12]}",
                           invoice=_SUMMARY)


def _next(event: InvoiceEvent) -> InvoiceEvent:
    """What a stage raises for the event it consumed: what the router and channels raise, with nothing decided."""
    if isinstance(event, InvoiceReceived):
        return DispatchRequested.following(event, channel="email_link", recipients=[_RECIPIENT], invoice=event.invoice)
    assert isinstance(event, DispatchRequested)
    return InvoiceDispatched.following(event, dispatch_id=event.dispatch_id, channel=event.channel, messages=[
        SentMessage(recipient=_RECIPIENT.email, message_id=f"<{event.dispatch_id}@parcours.localhost>")])


_FLOOR_METADATA = sqlalchemy.MetaData()
_RECIPIENT = Recipient(email="compta@bench.example", name="Comptabilité")
_SUMMARY = InvoiceSummary(number="F-2026-000001", issue_date="2026-11-02", due_date="2026-12-02", currency="EUR",
                          total_excl_tax="1000.00", total_tax="200.00", total_incl_tax="1200.00",
                          seller_name="Bench SARL", buyer_name="Client Bench SAS", customer_ref="CUST-0001",
                          source_format="json")


def _quantiles(values: list[float]) -> dict:
    ordered = sorted(values)

    def rank(p: float) -> float | None:
        return ordered[max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5))) - 1] if ordered else None

    return {"n": len(ordered), "p50": rank(50), "p95": rank(95), "p99": rank(99),
            "max": ordered[-1] if ordered else None}


def _payload(invoice_id: str) -> bytes:
    return json.dumps({"invoice_id": invoice_id, "type": "bench", "sent_at": time.time(),
                       "filler": PAYLOAD_FILLER}).encode()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--dsn", required=True, help="postgresql://… of a scratch database")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500, help="max records per poll (= consumer_batch_size)")
    parser.add_argument("--smtp-concurrency", type=int, default=8)
    parser.add_argument("--smtp-mode", choices=("pooled", "per-message"), default="pooled")
    parser.add_argument("--mail-bytes", type=int, default=3000)
    parser.add_argument("--fanout", action="store_true")
    parser.add_argument("--floor", action="store_true",
                        help="contract events, inbox and outbox at every hop, a schema per stage (see above)")
    parser.add_argument("--fetch-max-wait-ms", type=int, default=50,
                        help="consumer long-poll wait (the delivery path's services' default; `bench.run` passes "
                             "theirs)")
    parser.add_argument("--pace", type=float, default=None,
                        help="post one invoice at a time at this rate and measure each one's latency")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--hold", action="store_true",
                        help="print the result, then keep the connections open until a line arrives on stdin (a "
                             "monitor then reads the CPU of this process and of its database backends, which exit "
                             "with it)")
    args = parser.parse_args(argv)
    if args.floor and args.pace:
        parser.error("--floor measures throughput only (the paced run times the plain payload)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = eventloop.run(BarePipeline(args).run())
    if not args.hold:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tracked-link clicks: `GET /l/{token}` on the tracker (verify the signed token, classify the
open, journal it, re-project the invoice, 303 to the invoice page) against a bare FastAPI app
that only answers the same 303, served the same way (uvicorn, one process), driven by the same
client, in the same run. Goals: the tracker does ≥ 50 % of the bare app's requests/s, and its
p99 stays under 20 ms at half its own maximum rate.

    python -m bench.tracker_clicks                 # embedded PostgreSQL + Tansu, the tracker as a process
    python -m bench.tracker_clicks --seconds 5     # a quick look

Each server is measured twice: flat out (`connections` keep-alive connections, closed loop) for
its requests/s, then paced (open loop) at half the tracker's rate for latency, timed from when
each request was due (a request waiting for a free connection counts). The client is a minimal
HTTP/1.1 keep-alive client on asyncio streams, so that it costs less than the servers it
measures; it shares the box with them (the figures say what this box does)."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # `python bench/tracker_clicks.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_load import add_service_options, load_arguments, profiling_dir, start_yardstick, versus  # noqa: E402
from parcours_runtime import eventloop  # noqa: E402

TENANT = "bench-clicks"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
GOAL_RATIO, GOAL_P99_MS = 0.5, 20.0
HEADERS = {"User-Agent": BROWSER, "Accept": "text/html"}


def bare_app():
    """The yardstick: the same route answering the same redirect, and nothing else."""
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    app = FastAPI()

    @app.get("/l/{token}")
    async def open_link(token: str):
        return RedirectResponse(f"/v/{token}", status_code=303)

    return app


def _clicks(paths: list[str]):
    """The next click: the tracked links in turn, as GETs."""
    links = itertools.cycle(paths)
    return lambda: (next(links), None)


async def seed(bootstrap: str, tracker_dsn: str, invoices: int) -> list[str]:
    """`invoices` invoices received and dispatched (an hour ago) through the broker, as the other services
    publish them; returns one tracked-link path per invoice once the tracker has them all."""
    import asyncpg
    from aiokafka import AIOKafkaProducer

    from parcours_contracts import InvoiceDispatched, InvoiceReceived, InvoiceSummary, SentMessage, topic_for
    from parcours_runtime.links import issue_link_token
    from parcours_tracker.config import DEV_LINK_SECRET

    sent_at = datetime.now(timezone.utc) - timedelta(hours=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    paths = []
    try:
        for n in range(invoices):
            invoice_id, dispatch_id = uuid.uuid4(), uuid.uuid4()
            summary = InvoiceSummary(number=f"CLK-{n}", issue_date=date(2026, 11, 2), due_date=date(2026, 12, 2),
                                     currency="EUR", total_excl_tax=Decimal("100"), total_tax=Decimal("20"),
                                     total_incl_tax=Decimal("120"), seller_name="Bench SARL", buyer_name="Client",
                                     customer_ref=f"C-{n % 50}")
            envelope = dict(tenant_id=TENANT, invoice_id=invoice_id, correlation_id=f"clk-{n}")
            for event in (InvoiceReceived(**envelope, occurred_at=sent_at - timedelta(minutes=1), invoice=summary),
                          InvoiceDispatched(**envelope, occurred_at=sent_at, dispatch_id=dispatch_id,
                                            channel="email_link", messages=[SentMessage(
                                                recipient="ap@client.example", message_id=f"<{n}@bench>")])):
                await producer.send(topic_for(event), event.model_dump_json().encode(), key=event.key.encode())
            paths.append("/l/" + issue_link_token(DEV_LINK_SECRET, tenant_id=TENANT, invoice_id=invoice_id,
                                                  dispatch_id=dispatch_id, recipient="ap@client.example"))
        await producer.flush()
    finally:
        await producer.stop()
    connection = await asyncpg.connect(tracker_dsn)
    try:
        deadline = time.monotonic() + 300
        while await connection.fetchval("SELECT count(*) FROM invoices WHERE status = 'sent'") < invoices:
            if time.monotonic() > deadline:
                raise RuntimeError("the tracker did not take the seeded invoices within 5 minutes")
            await asyncio.sleep(0.5)
    finally:
        await connection.close()
    return paths


async def measure(*, server_dsn: str, bootstrap: str, log_dir: Path, seconds: float = 15, connections: int = 16,
                  invoices: int = 2000, profile_dir: Path | None = None, service_env: dict[str, str] | None = None,
                  say=print) -> dict:
    """Start the tracker (its own database on `server_dsn`) and the bare app, seed, and measure both."""
    from parcours_devstack.ports import free_port
    from parcours_devstack.postgres import create_database, server_url
    from parcours_devstack.services import ServiceProcess, service_env as env_of

    create_database(server_dsn, "bench_tracker_clicks")
    tracker_dsn = server_dsn.rsplit("/", 1)[0] + "/bench_tracker_clicks"
    port = free_port()
    env = env_of("tracker", database_url=server_url(server_dsn, "bench_tracker_clicks"), bootstrap=bootstrap,
                 port=port, extra={"ENVIRONMENT": "development", "CONSUMER_SESSION_TIMEOUT_MS": "2000",
                                   # one client address, flat out: the bucket is checked but never empty
                                   "RATE_LIMITS": '{"link": "1000000000/1"}', **(service_env or {})})
    tracker = ServiceProcess("tracker", env, port, log_path=log_dir / "tracker-clicks.log").start()
    bare_port = free_port()
    bare = start_yardstick("bench.tracker_clicks", bare_port, log_dir / "bare-redirect.log")
    try:
        await asyncio.to_thread(tracker.wait_ready, 120)
        say(f"tracker clicks: seeding {invoices} dispatched invoices through the broker")
        paths = await seed(bootstrap, tracker_dsn, invoices)
        result = await versus(name="tracker", url=tracker.url, pid=tracker.process.pid,
                              bare_url=f"http://127.0.0.1:{bare_port}", bare_pid=bare.pid, requests=lambda _: _clicks(paths),
                              expected=303, seconds=seconds, connections=connections, headers=HEADERS, log_dir=log_dir,
                              profile_dir=profile_dir, say=say)
        ratio, paced_p99 = result["ratio"], result["tracker"]["paced"]["p99_ms"]
        result.update(invoices=invoices, goal_ratio=GOAL_RATIO, goal_p99_ms=GOAL_P99_MS)
        result["pass"] = bool(ratio is not None and ratio >= GOAL_RATIO and (paced_p99 or 0) < GOAL_P99_MS)
        say(f"  → {ratio:.0%} of the bare rate (goal ≥ {GOAL_RATIO:.0%}; by CPU per request {result['cpu_ratio']:.0%}); "
            f"p99 at half load {paced_p99:.1f} ms (bare {result['bare']['paced']['p99_ms']:.1f} ms; "
            f"goal < {GOAL_P99_MS:.0f} ms)")
        return result
    finally:
        tracker.terminate()
        bare.terminate()
        bare.wait(10)


def main() -> None:
    parser = load_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=2000, help="distinct invoices (tracked links) clicked")
    add_service_options(parser, "tracker")
    args = parser.parse_args()
    if args.serve_bare:
        import uvicorn
        uvicorn.run(bare_app(), host="127.0.0.1", port=args.serve_bare, log_level="warning", access_log=False,
                    loop="uvloop", http="httptools")
        return
    from parcours_devstack.broker import TansuBroker
    from parcours_devstack.postgres import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="parcours-tracker-clicks-"))
    postgres = EmbeddedPostgres(work / "data").start()
    broker = TansuBroker(log_path=work / "broker.log").start()
    try:
        result = eventloop.run(measure(server_dsn=postgres.dsn, bootstrap=broker.bootstrap_servers, log_dir=work,
                                     seconds=args.seconds, connections=args.connections, invoices=args.invoices,
                                     profile_dir=profiling_dir(args),
                                     service_env=dict(kv.split("=", 1) for kv in args.service_env)))
    finally:
        broker.stop()
        postgres.stop()
    if result.get("profile"):
        print(json.dumps(result["profile"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""JSON invoice ingest: `POST /v1/invoices` on ingest (API key, parse with Decimal numbers, validate
the EN 16931 model and its arithmetic, store the invoice, its duplicate key and its outbox event in
one transaction, then the relay publishes it) against a bare FastAPI + asyncpg app that parses the
same JSON body and INSERTs it, one row per request, served the same way (uvicorn, one process),
driven by the same client, in the same run. Goal: ingest does ≥ 60 % of the bare app's requests/s.

    python -m bench.ingest_json                   # embedded PostgreSQL + Tansu, ingest as a process
    python -m bench.ingest_json --seconds 5       # a quick look
    python -m bench.ingest_json --profile DIR     # + py-spy of ingest during its flat-out run

Each server is measured flat out (`connections` keep-alive connections, closed loop) for its
requests/s, then paced (open loop) at half ingest's rate for latency (bench/http_load.py). Every
request is a new invoice (its own number), so none is a duplicate."""

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # `python bench/ingest_json.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_load import add_service_options, load_arguments, profiling_dir, start_yardstick, versus  # noqa: E402
from parcours_runtime import eventloop  # noqa: E402

TENANT = "bench-ingest"
GOAL_RATIO = 0.6
BARE_TABLE = """CREATE TABLE IF NOT EXISTS invoices (
    id uuid PRIMARY KEY, number text NOT NULL, document jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"""


def bare_app(dsn: str):
    """The yardstick: parse the JSON body, INSERT it, answer 202 with the new id; nothing else."""
    import uuid
    from contextlib import asynccontextmanager

    import asyncpg
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app):
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        async with pool.acquire() as connection:
            await connection.execute(BARE_TABLE)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/invoices")
    async def receive(request: Request):
        document = json.loads(await request.body())
        invoice_id = uuid.uuid4()
        await pool.execute("INSERT INTO invoices (id, number, document) VALUES ($1, $2, $3::jsonb)",
                           invoice_id, document["number"], json.dumps(document))
        return JSONResponse({"invoice_id": str(invoice_id), "number": document["number"]}, status_code=202)

    return app


def invoices(run: str):
    """The next invoice body: a 2-line invoice as make bench posts them, each with its own number."""
    from parcours_devstack import demo

    template = json.dumps(demo.invoice_body(
        "NUMBER", {"ref": "BENCH-1", "name": "Client 1 SAS"}, issued=date.today(), due_in_days=30,
        lines=[("Prestation de conseil", "2", "500.00", "20"), ("Frais", "1", "42.50", "20")])).encode()
    head, tail = template.split(b'"NUMBER"', 1)
    counter = itertools.count()
    return lambda: ("/v1/invoices", b'%s"%s-%07d"%s' % (head, run.encode(), next(counter), tail))


async def _tenant_key(url: str) -> str:
    import httpx

    from parcours_devstack import demo

    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{url}/v1/tenants", json={"name": "Bench Ingest SARL", "tenant_id": TENANT},
                                    headers={"Authorization": f"Bearer {demo.ADMIN_TOKEN}"})
        created.raise_for_status()
    key = created.json()["api_key"]
    await demo.wait_until_known(url, "/v1/invoices/00000000-0000-0000-0000-000000000000", key)
    return key


async def measure(*, server_dsn: str, bootstrap: str, log_dir: Path, seconds: float = 15, connections: int = 16,
                  profile_dir: Path | None = None, service_env: dict[str, str] | None = None, say=print) -> dict:
    """Start ingest (its own database on `server_dsn`) and the bare app (another database), and measure both."""
    from parcours_devstack.ports import free_port
    from parcours_devstack.postgres import create_database, server_url
    from parcours_devstack.services import ServiceProcess, service_env as env_of

    for name in ("bench_ingest_json", "bench_ingest_bare"):
        create_database(server_dsn, name)
    bare_dsn = server_dsn.rsplit("/", 1)[0] + "/bench_ingest_bare"
    port = free_port()
    env = env_of("ingest", database_url=server_url(server_dsn, "bench_ingest_json"), bootstrap=bootstrap, port=port,
                 extra={"ENVIRONMENT": "development", "CONSUMER_SESSION_TIMEOUT_MS": "2000",
                        "BLOB_STORE_URL": f"file:{log_dir / 'ingest-json-blobs'}", **(service_env or {})})
    ingest = ServiceProcess("ingest", env, port, log_path=log_dir / "ingest-json.log").start()
    bare_port = free_port()
    bare = start_yardstick("bench.ingest_json", bare_port, log_dir / "bare-insert.log", "--dsn", bare_dsn)
    try:
        await asyncio.to_thread(ingest.wait_ready, 120)
        headers = {"Authorization": f"Bearer {await _tenant_key(ingest.url)}", "Content-Type": "application/json"}
        result = await versus(name="ingest", url=ingest.url, pid=ingest.process.pid, bare_url=f"http://127.0.0.1:{bare_port}",
                              bare_pid=bare.pid, requests=invoices, expected=202, seconds=seconds,
                              connections=connections, headers=headers, log_dir=log_dir, profile_dir=profile_dir, say=say)
        ratio, paced_p99 = result["ratio"], result["ingest"]["paced"]["p99_ms"]
        result["goal_ratio"], result["pass"] = GOAL_RATIO, bool(ratio is not None and ratio >= GOAL_RATIO)
        say(f"  → {ratio:.0%} of the bare rate (goal ≥ {GOAL_RATIO:.0%}; by CPU per request {result['cpu_ratio']:.0%}); "
            f"p99 at half load {paced_p99:.1f} ms (bare {result['bare']['paced']['p99_ms']:.1f} ms)")
        return result
    finally:
        ingest.terminate()
        bare.terminate()
        bare.wait(10)


def main() -> None:
    parser = load_arguments(__doc__.split("\n\n")[0])
    add_service_options(parser, "ingest")
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        import uvicorn
        uvicorn.run(bare_app(args.dsn), host="127.0.0.1", port=args.serve_bare, log_level="warning", access_log=False,
                    loop="uvloop", http="httptools")
        return
    from parcours_devstack.broker import TansuBroker
    from parcours_devstack.postgres import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="parcours-ingest-json-"))
    postgres = EmbeddedPostgres(work / "data").start()
    broker = TansuBroker(log_path=work / "broker.log").start()
    try:
        result = eventloop.run(measure(server_dsn=postgres.dsn, bootstrap=broker.bootstrap_servers, log_dir=work,
                                     seconds=args.seconds, connections=args.connections, profile_dir=profiling_dir(args),
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

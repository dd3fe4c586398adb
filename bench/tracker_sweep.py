"""The tracker's receipt sweep at scale: with 1 M tracked invoices each awaiting a proof of
receipt (a stored timer), a slice of them past their deadline, how long does one pass of the
real `ReceiptSweep` take to open every not_received incident (incident row, journal verdict,
IncidentOpened in the outbox, timer marked fired, batch after batch), and how long does a
pass take when nothing is due (what every tick costs)? Against a plain indexed read of the
same due timers, in the same run.

    python -m bench.tracker_sweep                      # 1 000 000 invoices, on an embedded PostgreSQL
    python -m bench.tracker_sweep --invoices 20000 --dsn postgresql://…/db

The tables are the tracker's own (its Alembic migrations); the pass runs in this process on
a fixed clock, exactly the code the service's background job runs."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):  # `python bench/tracker_sweep.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench import standalone  # noqa: E402
from parcours_runtime.clock import SettableClock  # noqa: E402
from parcours_runtime.db import create_engine, session_factory  # noqa: E402
from parcours_runtime.service import prepare_database  # noqa: E402
from parcours_tracker.app import definition  # noqa: E402
from parcours_tracker.store.journeys import Tracking  # noqa: E402
from parcours_tracker.sweep import ReceiptSweep  # noqa: E402

NOW = datetime(2027, 3, 1, 9, tzinfo=timezone.utc)
_CLEAR = "TRUNCATE invoices, receipt_timers, incidents, journal, outbox"
_POPULATE = [
    """INSERT INTO invoices (tenant_id, invoice_id, correlation_id, number, number_key, status, code, status_at,
                             first_dispatched_at)
       SELECT 't' || (n % 10), md5(n::text)::uuid, 'c' || n, 'INV-' || n, 'INV' || n, 'sent', 201,
              CAST(:now AS timestamptz) - interval '1 day', CAST(:now AS timestamptz) - interval '1 day'
       FROM generate_series(1, :n) AS n""",
    # a quarter EDI (an ack within the hour), the rest e-mail links (a view within 2 business days);
    # deadlines spread over the horizon so that about `due_share` of them are past
    """INSERT INTO receipt_timers (tenant_id, invoice_id, channel, dispatch_id, dispatched_at, proof, expect_by)
       SELECT 't' || (n % 10), md5(n::text)::uuid, CASE WHEN n % 4 = 0 THEN 'edi' ELSE 'email_link' END,
              md5('d' || n)::uuid, CAST(:now AS timestamptz) - interval '1 day',
              CASE WHEN n % 4 = 0 THEN 'ack' ELSE 'view' END,
              CAST(:now AS timestamptz) + make_interval(secs => ((n::bigint * 7919) % 1000003) / 1000003.0
                  * CAST(:horizon AS float8) - CAST(:due_secs AS float8))
       FROM generate_series(1, :n) AS n""",
]


def _async_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def populate(engine, invoices: int, due_share: float, horizon_days: int) -> dict:
    started = time.perf_counter()
    horizon = horizon_days * 86400.0
    async with engine.begin() as conn:
        await conn.execute(text(_CLEAR))
        for sql in _POPULATE:
            await conn.execute(text(sql), {"n": invoices, "now": NOW, "horizon": horizon,
                                           "due_secs": horizon * due_share})
    await standalone.analyze(engine, "invoices", "receipt_timers")
    async with engine.connect() as conn:
        due = (await conn.execute(text("SELECT count(*) FROM receipt_timers WHERE fired_at IS NULL "
                                       "AND expect_by <= :now"), {"now": NOW})).scalar_one()
    return {"seconds": time.perf_counter() - started, "timers": invoices, "due": due}


async def plain_scan(engine) -> tuple[float, int]:
    """The baseline: the due timers read through the sweep's partial index, nothing else."""
    async with engine.connect() as conn:
        started = time.perf_counter()
        rows = (await conn.execute(text("SELECT tenant_id, invoice_id FROM receipt_timers "
                                        "WHERE fired_at IS NULL AND expect_by <= :now"), {"now": NOW})).all()
        return time.perf_counter() - started, len(rows)


def _sweep(engine, batch: int) -> ReceiptSweep:
    """The service's ReceiptSweep on this database, with the context it reads (settings, sessions, tracking)."""
    ctx = SimpleNamespace(settings=SimpleNamespace(sweep_tick_seconds=60, sweep_batch_size=batch),
                          sessions=session_factory(engine), extras={"tracking": Tracking(clock=SettableClock(NOW))})
    return ReceiptSweep(ctx)


async def measure(dsn: str, *, invoices: int = 1_000_000, due_share: float = 0.01, horizon_days: int = 60,
                  batch: int = 500, say=print) -> dict:
    """Populate the tracker's tables in `dsn` (emptied first), then time the sweep passes and the plain scan."""
    url = _async_url(dsn)
    await prepare_database(definition(), url)
    engine = create_engine(url, pool_size=2)
    try:
        say(f"tracker sweep: populating {invoices} tracked invoices awaiting a proof of receipt")
        table = await populate(engine, invoices, due_share, horizon_days)
        say(f"  {table['due']} timers past their deadline ({table['seconds']:.0f} s to load)")
        scan_seconds, scanned = await plain_scan(engine)
        sweep = _sweep(engine, batch)
        started = time.perf_counter()
        fired = len((await sweep.run_once()).opened)
        pass_seconds = time.perf_counter() - started
        idle = []
        for _ in range(5):
            started = time.perf_counter()
            left = len((await sweep.run_once()).opened)
            idle.append(time.perf_counter() - started)
        async with engine.connect() as conn:
            incidents = (await conn.execute(text("SELECT count(*) FROM incidents WHERE status = 'open'"))).scalar_one()
        if not (fired == scanned == table["due"] == incidents) or left:
            raise RuntimeError(f"the sweep fired {fired} timers ({incidents} incidents, {left} on a later pass); "
                               f"{scanned} were due")
        idle_ms = sorted(idle)[len(idle) // 2] * 1000
        result = {"invoices": invoices, "table": table, "batch": batch, "plain_scan_seconds": scan_seconds,
                  "sweep_seconds": pass_seconds, "fired": fired, "incidents_per_second": fired / pass_seconds,
                  "idle_pass_ms": idle_ms, "idle_passes_ms": [round(s * 1000, 2) for s in idle],
                  "ratio": pass_seconds / scan_seconds if scan_seconds else None}
        say(f"  plain indexed read of the due timers {scan_seconds * 1000:.0f} ms; the sweep opened {fired} incidents "
            f"in {pass_seconds:.1f} s ({result['incidents_per_second']:.0f}/s, batches of {batch}); "
            f"a pass with nothing due {idle_ms:.1f} ms over {invoices} timers")
        return result
    finally:
        await engine.dispose()


def main() -> None:
    parser = standalone.parser(__doc__)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--due-share", type=float, default=0.01, help="share of the timers past due (default 0.01)")
    parser.add_argument("--batch", type=int, default=500, help="timers per transaction (the service's default)")
    args = parser.parse_args()
    standalone.run(lambda dsn: measure(dsn, invoices=args.invoices, due_share=args.due_share, batch=args.batch), args,
                   name="tracker_sweep")


if __name__ == "__main__":
    main()

"""Dunning's scheduler at scale: with 1 M open invoices (five schedule rows each, a slice of
them due), how long does one scheduler pass take to *find* every due step — its claim query
batch after batch, the way `ReminderScheduler` runs it — against a plain indexed scan of the
same rows of the same table, in the same run. Goal: ≤ 10×.

    python -m bench.dunning_scan                      # 1 000 000 invoices, on an embedded PostgreSQL
    python -m bench.dunning_scan --invoices 20000 --dsn postgresql://…/db

Deciding is not timed: between two claims the emulated pass marks the claimed invoices' due
steps decided (one UPDATE), inside one transaction rolled back at the end, so every
repetition sees the same table."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # `python bench/dunning_scan.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine  # noqa: E402

from parcours_dunning.store import metadata  # noqa: E402
from parcours_dunning.store.invoices import lock_invoices  # noqa: E402
from parcours_dunning.store.schedule import claim_due_invoices, steps_by_invoice  # noqa: E402
from parcours_runtime import eventloop  # noqa: E402

NOW = datetime(2027, 3, 1, 9, tzinfo=timezone.utc)
STEPS = ("pre_due", "preventive", "curative_1", "curative_2", "formal_notice")

_POPULATE = [
    """INSERT INTO invoices (tenant_id, invoice_id, correlation_id, number, customer_ref, issue_date, due_date,
                             currency, total_excl_tax, total_tax, total_incl_tax, strategy, strategy_version, summary)
       SELECT 't' || (n % 10), md5(n::text)::uuid, 'c' || n, 'INV-' || n, 'CUST-' || (n % 50000),
              date '2027-01-01' + (n % 120), date '2027-01-31' + (n % 120), 'EUR', 100, 20, 120, 'default', 1, '{}'
       FROM generate_series(1, :n) AS n""",
    # five steps each; the invoice's date spread puts about `due_share` of the invoices' first pending step in the past
    """INSERT INTO schedule (tenant_id, invoice_id, strategy, step, sequence, action, fire_at, state)
       SELECT 't' || (n % 10), md5(n::text)::uuid, 'default', (ARRAY['pre_due','preventive','curative_1','curative_2',
              'formal_notice'])[s], s, CASE WHEN s = 5 THEN 'task' ELSE 'reminder' END,
              CAST(:now AS timestamptz) + make_interval(secs => ((n::bigint * 7919) % 1000003) / 1000003.0 * CAST(:horizon AS float8) - CAST(:due_secs AS float8)) + (s - 1) * interval '10 days',
              CASE WHEN s = 1 AND n % 3 = 0 THEN 'emitted' ELSE 'pending' END
       FROM generate_series(1, :n) AS n, generate_series(1, 5) AS s""",
]


async def populate(engine, invoices: int, due_share: float, horizon_days: int) -> dict:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    started = time.perf_counter()
    horizon = horizon_days * 86400.0
    async with engine.begin() as conn:
        for sql in _POPULATE:
            await conn.execute(text(sql), {"n": invoices, "now": NOW, "horizon": horizon, "due_secs": horizon * due_share})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE invoices"))
        await conn.execute(text("VACUUM ANALYZE schedule"))
        due = (await conn.execute(text("SELECT count(*), count(DISTINCT (tenant_id, invoice_id)) FROM schedule "
                                       "WHERE state = 'pending' AND fire_at <= :now"), {"now": NOW})).one()
    return {"seconds": time.perf_counter() - started, "schedule_rows": invoices * len(STEPS), "due_steps": due[0],
            "due_invoices": due[1]}


async def plain_scan(sessions) -> tuple[float, int]:
    """The baseline: every due step read through the schedule's partial index, nothing else."""
    async with sessions() as session:
        started = time.perf_counter()
        rows = (await session.execute(text(
            "SELECT tenant_id, invoice_id, step FROM schedule WHERE state = 'pending' AND fire_at <= :now"),
            {"now": NOW})).all()
        return time.perf_counter() - started, len(rows)


async def scheduler_pass(sessions, batch: int) -> tuple[float, float, int, int]:
    """The scheduler's finding: claim a batch of invoices with due steps (FOR UPDATE SKIP LOCKED, each
    claim from where the previous one stopped), until none is left (timed), and load their invoice rows
    and schedules (timed apart); deciding is emulated, not timed."""
    found = steps = 0
    finding = loading = 0.0
    after = None
    async with sessions() as session, session.begin():
        while True:
            started = time.perf_counter()
            keys, after = await claim_due_invoices(session, now=NOW, limit=batch, after=after)
            claimed = time.perf_counter()
            invoices = await lock_invoices(session, keys=keys)
            rows = await steps_by_invoice(session, keys=[invoice.key for invoice in invoices])
            finding += claimed - started
            loading += time.perf_counter() - claimed
            if not keys:
                break
            found += len(keys)
            due = [r for key in rows for r in rows[key] if r.state == "pending" and r.fire_at <= NOW]
            steps += len(due)
            await session.execute(text(
                "UPDATE schedule SET state = 'emitted' WHERE (tenant_id, invoice_id) IN "
                "(SELECT t, i FROM unnest(CAST(:t AS text[]), CAST(:i AS uuid[])) AS k(t, i)) "
                "AND state = 'pending' AND fire_at <= :now"),
                {"t": [k[0] for k in rows], "i": [str(k[1]) for k in rows], "now": NOW})
            session.expunge_all()
        await session.rollback()
    return finding, loading, found, steps


async def measure(dsn: str, *, invoices: int = 1_000_000, due_share: float = 0.02, horizon_days: int = 120,
                  batch: int = 100, repeat: int = 3, say=print) -> dict:
    """Populate a dunning schedule in `dsn` (its tables are dropped first) and time both readings."""
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        say(f"dunning scan: populating {invoices} open invoices ({invoices * len(STEPS)} schedule rows)")
        table = await populate(engine, invoices, due_share, horizon_days)
        say(f"  {table['due_steps']} due steps on {table['due_invoices']} invoices ({table['seconds']:.0f} s to load)")
        scans, passes, loads = [], [], []
        for _ in range(repeat):
            scan_seconds, scanned = await plain_scan(sessions)
            scans.append(scan_seconds)
            pass_seconds, load_seconds, claimed, due_steps = await scheduler_pass(sessions, batch)
            passes.append(pass_seconds)
            loads.append(load_seconds)
        if scanned != due_steps or claimed != table["due_invoices"]:
            raise RuntimeError(f"the pass found {due_steps} due steps on {claimed} invoices, the scan {scanned} steps")
        scan, found = statistics.median(scans), statistics.median(passes)
        result = {"invoices": invoices, "table": table, "batch": batch, "repeat": repeat,
                  "plain_scan_seconds": scan, "scheduler_find_seconds": found, "ratio": found / scan if scan else None,
                  "schedules_load_seconds": statistics.median(loads), "goal_ratio": 10, "scans": scans,
                  "passes": passes}
        say(f"  plain indexed scan {scan * 1000:.0f} ms; scheduler claims {found * 1000:.0f} ms in batches of {batch} "
            f"→ {result['ratio']:.1f}× (goal ≤ 10×); loading the claimed invoices and schedules "
            f"{result['schedules_load_seconds'] * 1000:.0f} ms more")
        return result
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--due-share", type=float, default=0.02, help="share of the invoices with steps due (default 0.02)")
    parser.add_argument("--batch", type=int, default=100, help="invoices per claim (the scheduler's default)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsn", help="a PostgreSQL database to use (default: an embedded server)")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    postgres = None
    dsn = args.dsn
    if dsn is None:
        from parcours_devstack.postgres import EmbeddedPostgres, create_database
        postgres = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="parcours-dunning-scan-")) / "data").start()
        create_database(postgres.dsn, "dunning_scan")
        dsn = postgres.dsn.rsplit("/", 1)[0] + "/dunning_scan"
    try:
        result = eventloop.run(measure(dsn, invoices=args.invoices, due_share=args.due_share, batch=args.batch,
                                     repeat=args.repeat))
    finally:
        if postgres is not None:
            postgres.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""How PostgreSQL runs dunning's per-event reads once asyncpg's prepared statements settle on
their generic plan, on tables not analysed yet (a fresh service): by their key index, never by
an index on the tenant alone nor by a sequential scan, either of which reads more rows the more
invoices the table holds (a cost per event that grows with the table, quadratic over a run)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone

from sqlalchemy import event, text

from parcours_dunning.store.customers import customer_contexts
from parcours_dunning.store.invoices import get_invoice, lock_invoices, signals_of
from parcours_dunning.store.schedule import steps_by_invoice

NOW = datetime(2027, 3, 1, 9, tzinfo=timezone.utc)

_POPULATE = [
    """INSERT INTO invoices (tenant_id, invoice_id, correlation_id, number, customer_ref, issue_date, due_date,
                             currency, total_excl_tax, total_tax, total_incl_tax, strategy, strategy_version, summary)
       SELECT 'acme', md5(n::text)::uuid, 'c' || n, 'INV-' || n, 'CUST-' || (n % 10), date '2027-01-01',
              date '2027-01-31', 'EUR', 100, 20, 120, 'default', 1, '{}' FROM generate_series(1, 3000) AS n""",
    """INSERT INTO schedule (tenant_id, invoice_id, strategy, step, sequence, action, fire_at, state)
       SELECT 'acme', md5(n::text)::uuid, 'default', 'step-' || s, s, 'reminder', :now, 'pending'
       FROM generate_series(1, 3000) AS n, generate_series(1, 5) AS s""",
    """INSERT INTO dispatch_outcomes (event_id, tenant_id, invoice_id, dispatch_id, channel, purpose, outcome, occurred_at)
       SELECT gen_random_uuid(), 'acme', md5(n::text)::uuid, gen_random_uuid(), 'email_link', 'invoice', 'dispatched', :now
       FROM generate_series(1, 3000) AS n""",
    """INSERT INTO invoice_signals (event_id, tenant_id, invoice_id, kind, at, data)
       SELECT gen_random_uuid(), 'acme', md5(n::text)::uuid, 'lifecycle', :now, '{"code": 205}'
       FROM generate_series(1, 3000) AS n""",
    """INSERT INTO evidence (event_id, tenant_id, invoice_id, kind, observed_at)
       SELECT gen_random_uuid(), 'acme', md5(n::text)::uuid, 'link.clicked', :now FROM generate_series(1, 3000) AS n""",
    """INSERT INTO customers (tenant_id, customer_ref, deleted, tags, changed_at)
       SELECT 'acme', 'CUST-' || n, false, '[]', :now FROM generate_series(0, 9) AS n""",
]


def _literal(value) -> str:
    if isinstance(value, (list, tuple)):
        return "'{" + ",".join('"' + str(v).replace('"', '\\"') + '"' for v in value).replace("'", "''") + "}'"
    return "'" + str(value).replace("'", "''") + "'"


async def generic_plans(sessions, read) -> list[str]:
    """The generic plan of each statement `read(session)` executes."""
    statements: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    async with sessions() as session:
        engine = session.bind.sync_engine
        event.listen(engine, "before_cursor_execute", capture)
        try:
            await read(session)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        await session.rollback()
        await session.execute(text("SET plan_cache_mode = force_generic_plan"))
        plans = []
        for n, (statement, parameters) in enumerate(s for s in statements if s[0].lstrip().startswith("SELECT")):
            await session.execute(text(f"PREPARE probe_{n} AS {statement}"))
            arguments = ", ".join(_literal(p) for p in parameters)
            plans.append("\n".join((await session.execute(text(f"EXPLAIN EXECUTE probe_{n}({arguments})"))).scalars()))
        return plans


async def test_per_event_reads_use_the_key_index_on_tables_not_analysed_yet(run_service):
    host = await run_service("dunning", time_travel=True, tick_seconds=3600)
    async with host.ctx.sessions() as session:
        for statement in _POPULATE:
            await session.execute(text(statement), {"now": NOW})
        await session.commit()
    keys = [("acme", uuid.UUID(hex=hashlib.md5(str(n).encode()).hexdigest())) for n in (7, 42, 1999)]

    async def read(session):
        await get_invoice(session, tenant_id="acme", invoice_id=keys[0][1], lock=True)
        await lock_invoices(session, keys=keys)
        assert sum(len(s) for s in (await signals_of(session, keys=keys)).values()) == 9, "three facts each"
        assert sum(len(r) for r in (await steps_by_invoice(session, keys=keys)).values()) == 15
        await customer_contexts(session, keys={("acme", "CUST-7"), ("acme", "CUST-2")})

    plans = await generic_plans(host.ctx.sessions, read)
    assert len(plans) == 7, plans  # the invoice twice, the three fact tables in one, the schedule, customers x3
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        assert "Index" in plan, plan
    invoice_plans = [p for p in plans if " on invoices" in p]
    assert len(invoice_plans) == 2 and all("invoices_pkey" in p for p in invoice_plans), invoice_plans


    # Another index led by tenant_id ties with the key in such a plan, and the planner may take it and
    # filter the invoice id (it did, with the customer index, until migration 0005).
    async with host.ctx.sessions() as session:
        leading = (await session.execute(text(
            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = 'invoices'::regclass AND a.attname = 'tenant_id'"))).scalars().all()
    assert leading == ["invoices_pkey"], "only the primary key of invoices starts with the tenant"

"""FirstStatistics: a young table gets its first ANALYZE once it holds enough rows, after which a
lookup by key reads through the primary key; tables with statistics are left to autovacuum."""

from __future__ import annotations

from sqlalchemy import text

from parcours_runtime.db import create_engine
from parcours_runtime.table_stats import FirstStatistics

_TABLE = """CREATE TABLE {name} (tenant_id varchar(64), invoice_id uuid, updated_at timestamptz DEFAULT now(),
                                 PRIMARY KEY (tenant_id, invoice_id));
            CREATE INDEX {name}_by_update ON {name} (tenant_id, updated_at)"""
_FILL = "INSERT INTO {name} (tenant_id, invoice_id) SELECT 'acme', gen_random_uuid() FROM generate_series(1, :n)"


async def _plan(conn, name: str) -> str:
    """The plan of a batch's lookup by key: 50 invoice ids of one tenant."""
    ids = ",".join(f"00000000-0000-0000-0000-{n:012d}" for n in range(50))
    rows = (await conn.execute(text(f"EXPLAIN SELECT * FROM {name} WHERE tenant_id = ANY('{{acme}}') "
                                    f"AND invoice_id = ANY('{{{ids}}}')"))).scalars()
    return " ".join(rows)


async def test_young_tables_get_their_first_statistics_then_the_job_rests(make_database):
    engine = create_engine(make_database("stats"), pool_size=2)
    try:
        async with engine.begin() as conn:
            for name in ("big", "small"):
                for statement in _TABLE.format(name=name).split(";"):
                    await conn.execute(text(statement))
            await conn.execute(text(_FILL.format(name="big")), {"n": 3000})
            await conn.execute(text(_FILL.format(name="small")), {"n": 20})
        async with engine.connect() as conn:  # the problem: without statistics, the tenant index serves the batch
            assert "big_by_update" in await _plan(conn, "big")
        job = FirstStatistics(engine, ["big", "small"], min_rows=200)

        assert await job.run_once() == ["big"], "the small table is not worth a pass yet"
        assert not job.done
        async with engine.connect() as conn:
            assert "big_pkey" in await _plan(conn, "big")
            await conn.execute(text(_FILL.format(name="small")), {"n": 500})
            await conn.commit()

        assert await job.run_once() == ["small"]
        assert job.done and job.analysed == ["big", "small"]
        assert await job.run_once() == [], "with statistics everywhere, a pass does nothing"
    finally:
        await engine.dispose()

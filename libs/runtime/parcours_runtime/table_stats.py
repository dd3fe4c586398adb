"""First statistics for young tables: a background job that runs ANALYZE on a service's hot tables as
soon as they hold `min_rows` rows without having statistics yet, then has nothing more to do.

Why: until its first ANALYZE, PostgreSQL estimates `tenant_id = …` as selective as a whole key and,
on what it believes is a small table, prefers the narrowest index that serves it (a tenant-leading
secondary index) over the primary key, so each lookup by key reads every row of the tenant. A fresh
database taking a backlog in its first minute (autovacuum's first pass comes after up to
`autovacuum_naptime`) reads quadratically until then. Once a table has statistics, autovacuum keeps
them current; this job has nothing more to do."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parcours_runtime.db import autocommit
from parcours_runtime.periodic import PeriodicJob

log = logging.getLogger(__name__)

_WITHOUT_STATISTICS = text("""
    SELECT t.name FROM unnest(CAST(:tables AS text[])) AS t(name)
    WHERE NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = current_schema() AND s.tablename = t.name)""")


class FirstStatistics(PeriodicJob):
    """BackgroundJob: every `period_seconds`, ANALYZE the `tables` that have no statistics yet and hold
    at least `min_rows` rows; once every table has statistics, its passes do nothing (no query)."""

    def __init__(self, engine: AsyncEngine, tables: Sequence[str], *, min_rows: int = 100,
                 period_seconds: float = 2.0):
        super().__init__(period_seconds)
        self._engine = engine
        self._tables = list(tables)
        self._min_rows = min_rows
        self.analysed: list[str] = []
        self.done = False

    async def run_once(self) -> list[str]:
        """ANALYZE the tables due now; the ones analysed."""
        if self.done:
            return []
        async with autocommit(self._engine) as conn:
            waiting = list((await conn.execute(_WITHOUT_STATISTICS, {"tables": self._tables})).scalars())
            due = [table for table in waiting if (await conn.execute(text(
                f'SELECT count(*) FROM (SELECT 1 FROM "{table}" LIMIT :rows) AS young'),
                {"rows": self._min_rows})).scalar_one() >= self._min_rows]
            for table in due:
                await conn.execute(text(f'ANALYZE "{table}"'))
        if due:
            log.info("first statistics of %s", ", ".join(due))
            self.analysed.extend(due)
        self.done = len(waiting) == len(due)  # every table has statistics now: autovacuum takes it from here
        return due

"""What a component benchmark needs to run alone (`python -m bench.<name>`): its command line's
`--dsn` and `--json`, an embedded PostgreSQL when no database is given, fresh statistics after
a bulk load. `bench.run` calls the benchmarks' `measure()` on its own infrastructure instead."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from parcours_runtime import eventloop


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by the module's docstring, with `--dsn` and `--json`."""
    parsed = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parsed.add_argument("--dsn", help="a PostgreSQL database to use (default: an embedded server)")
    parsed.add_argument("--json", help="write the result here")
    return parsed


def run(measure: Callable[[str], Awaitable[dict]], args: argparse.Namespace, *, name: str) -> dict:
    """`measure(dsn)` on `args.dsn`, or on a database `name` of an embedded PostgreSQL started for it."""
    postgres, dsn = None, args.dsn
    if dsn is None:
        from parcours_devstack.postgres import EmbeddedPostgres, create_database
        postgres = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix=f"parcours-{name}-")) / "data").start()
        create_database(postgres.dsn, name)
        dsn = postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        result = eventloop.run(measure(dsn))
    finally:
        if postgres is not None:
            postgres.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return result


async def analyze(engine: AsyncEngine, *tables: str) -> None:
    """VACUUM ANALYZE after a bulk load, so that the planner sees the tables as they are."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            await conn.execute(text(f"VACUUM ANALYZE {table}"))

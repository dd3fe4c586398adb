"""Scratch databases on the (embedded or external) server: created once, dropped even while in use."""

from __future__ import annotations

import asyncpg
import pytest

from parcours_devstack.postgres import create_database, drop_database


async def _names(server_dsn: str) -> set[str]:
    connection = await asyncpg.connect(server_dsn)
    try:
        return {row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")}
    finally:
        await connection.close()


async def test_a_database_is_dropped_with_its_open_connections_and_dropping_it_again_is_harmless(pg_server):
    create_database(pg_server, "scratch_drop")
    holder = await asyncpg.connect(pg_server.rsplit("/", 1)[0] + "/scratch_drop")
    try:
        drop_database(pg_server, "scratch_drop")
        assert "scratch_drop" not in await _names(pg_server)
        drop_database(pg_server, "scratch_drop")
    finally:
        await holder.close()


def test_a_name_that_is_not_a_plain_identifier_is_refused(pg_server):
    with pytest.raises(ValueError, match="unsafe database name"):
        drop_database(pg_server, 'x"; DROP DATABASE postgres; --')

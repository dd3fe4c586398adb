"""A broker and a PostgreSQL server of this test's own, so the test may freeze or restart them."""

from __future__ import annotations

import pytest

from parcours_devstack.broker import TansuBroker
from parcours_devstack.postgres import EmbeddedPostgres


@pytest.fixture
def broker(tmp_path):
    started = TansuBroker(log_path=tmp_path / "broker.log").start()
    yield started
    started.stop()


@pytest.fixture
def kafka(broker) -> str:
    return broker.bootstrap_servers


@pytest.fixture
def postgres(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg").start()
    yield server
    server.destroy()


@pytest.fixture
def pg_server(postgres) -> str:
    return postgres.dsn

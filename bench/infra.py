"""The benchmark's infrastructure: embedded PostgreSQL, the Tansu broker, the SMTP sink in its
own process, and the five services as processes, wired the way the dev stack wires them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from parcours_devstack.broker import TansuBroker
from parcours_devstack.orphans import die_with_parent
from parcours_devstack.ports import free_port, wait_for_port
from parcours_devstack.postgres import EmbeddedPostgres, create_database, drop_database, server_url
from parcours_devstack.services import SERVICES, ServiceProcess, service_env

# Like `make run` (stack.DEV_SETTINGS): Tansu holds a first group join for half the session timeout.
_ROOT = Path(__file__).resolve().parent.parent
SERVICE_SETTINGS = {"ENVIRONMENT": "development", "CONSUMER_SESSION_TIMEOUT_MS": "2000"}


class SinkProcess:
    """`python -m parcours_devstack.smtp_sink` in its own process, so it does not share a loop
    (or a core's worth of GIL) with the benchmark driver."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.module = "parcours_devstack.smtp_sink"
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> "SinkProcess":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, "--smtp-port", str(self.smtp_port),
                 "--http-port", str(self.http_port)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
                cwd=_ROOT)
        wait_for_port("127.0.0.1", self.smtp_port, timeout=30)
        wait_for_port("127.0.0.1", self.http_port, timeout=30)
        return self

    def stop(self) -> None:
        _terminate(self.process)


class Infra:
    """PostgreSQL + broker + SMTP sink (+ services once `start_services` ran)."""

    def __init__(self, out_dir: Path, *, keep_data: bool = False):
        self.logs = out_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.keep_data = keep_data
        self.pg_dir = Path(tempfile.mkdtemp(prefix="parcours-bench-pg-"))
        self.postgres: EmbeddedPostgres | None = None
        self.broker: TansuBroker | None = None
        self.sink: SinkProcess | None = None
        self.services: dict[str, ServiceProcess] = {}

    @property
    def pg_dsn(self) -> str:
        assert self.postgres is not None
        return self.postgres.dsn

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap_servers

    def start(self) -> "Infra":
        self.postgres = EmbeddedPostgres(self.pg_dir / "data").start()
        self.broker = TansuBroker(log_path=self.logs / "broker.log").start()
        self.sink = SinkProcess(self.logs / "smtp-sink.log").start()
        return self

    def fresh_broker(self) -> None:
        """A new, empty broker in place of the running one (Tansu keeps its topics in memory): the events the
        component benchmarks published (ingest's InvoiceReceived, the clicks' seed) stay out of the pipeline
        runs, whose services would otherwise consume them all first, on topics already tens of thousands long."""
        if self.broker:
            self.broker.stop()
        self.broker = TansuBroker(log_path=self.logs / "broker.log").start()

    def database(self, name: str) -> str:
        """asyncpg/libpq DSN of a (created if missing) database on the embedded server."""
        create_database(self.pg_dsn, name)
        return self.pg_dsn.rsplit("/", 1)[0] + "/" + name

    def start_services(self, overrides: dict[str, str], replicas: dict[str, int] | None = None) -> dict[str, ServiceProcess]:
        """The services as processes; `overrides` are full env names (PARCOURS_<NAME>_<SETTING>);
        `replicas` starts more processes of a service (same database, same consumer group), named
        `<name>-2`, `<name>-3`…"""
        assert self.sink is not None
        ports = {name: free_port() for name in SERVICES}
        tracker_url = f"http://127.0.0.1:{ports['tracker']}"
        per_service = {
            "channels": {"SMTP_PORT": str(self.sink.smtp_port), "TRACKER_PUBLIC_URL": tracker_url},
            "tracker": {"PUBLIC_URL": tracker_url},
        }
        for name in SERVICES:
            database = f"parcours_{name}"
            create_database(self.pg_dsn, database)
            env = service_env(name, database_url=server_url(self.pg_dsn, database), bootstrap=self.bootstrap,
                              port=ports[name], extra={**SERVICE_SETTINGS, **per_service.get(name, {})})
            env.update(overrides)
            self.services[name] = ServiceProcess(name, env, ports[name], log_path=self.logs / f"{name}.log").start()
            for replica in range(2, (replicas or {}).get(name, 1) + 1):
                port = free_port()
                replica_env = {**env, f"PARCOURS_{name.upper()}_HTTP_PORT": str(port)}
                self.services[f"{name}-{replica}"] = ServiceProcess(
                    name, replica_env, port, log_path=self.logs / f"{name}-{replica}.log").start()
        for process in self.services.values():
            process.wait_ready(120)
        return self.services

    def drop_database(self, name: str) -> None:
        """Drop a scratch database once its benchmark is done: its tables would keep autovacuum busy under the
        benchmarks that follow."""
        drop_database(self.pg_dsn, name)

    def service_db(self, name: str) -> str:
        return self.pg_dsn.rsplit("/", 1)[0] + f"/parcours_{service_of(name)}"

    def pids(self) -> dict[str, int]:
        """Processes worth watching, by role."""
        pids = {name: p.process.pid for name, p in self.services.items() if p.process and p.process.poll() is None}
        if self.broker and self.broker.process:
            pids["broker"] = self.broker.process.pid
        if self.postgres and self.postgres.process:
            pids["postgres"] = self.postgres.process.pid
        if self.sink and self.sink.process:
            pids["smtp-sink"] = self.sink.process.pid
        return pids

    def dead_services(self) -> list[str]:
        return [n for n, p in self.services.items() if p.process is not None and p.process.poll() is not None]

    def stop(self) -> None:
        for process in self.services.values():
            try:
                process.terminate(timeout=20)
            except Exception:
                process.kill()
        if self.sink:
            self.sink.stop()
        if self.broker:
            self.broker.stop()
        if self.postgres:
            log = self.postgres.data_dir / "server.log"
            self.postgres.stop()
            if log.exists():
                shutil.copy(log, self.logs / "postgres.log")
        if not self.keep_data:
            shutil.rmtree(self.pg_dir, ignore_errors=True)


def service_of(role: str) -> str:
    """The service a process runs: `channels-2` (a replica `start_services` named) → `channels`."""
    return role.split("-")[0]


def pg_fast() -> bool:
    """Whether EmbeddedPostgres runs with fsync=off (it reads PARCOURS_PG_FAST itself)."""
    return bool(os.environ.get("PARCOURS_PG_FAST"))


def _terminate(process: subprocess.Popen | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


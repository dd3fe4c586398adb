"""A real SMTP server that keeps what it receives, and a small HTTP view of that mailbox.

Runs in the caller's asyncio loop (tests, the dev stack) or on its own:
`python -m parcours_devstack.smtp_sink --smtp-port 2525 --http-port 8025 [--store-dir DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.errors
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import json
import re
import signal
import socket
import sys
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session

from parcours_devstack import mailbox_view

DATA_SIZE_LIMIT = 50 * 1024 * 1024
_HEADERS = {"message_id": "Message-ID", "subject": "Subject", "from": "From", "to": "To", "date": "Date"}
Stage = Literal["rcpt", "data"]


@dataclass(frozen=True)
class StoredMessage:
    id: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: str
    raw: bytes
    headers: dict[str, str | None]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            **self.headers,
            "received_at": self.received_at,
            "size": len(self.raw),
        }

    def detail(self) -> dict[str, Any]:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        text_part = parsed.get_body(preferencelist=("plain",))
        html_part = parsed.get_body(preferencelist=("html",))
        attachments = [
            {
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "size": len(part.get_payload(decode=True) or b""),
            }
            for part in parsed.walk()
            if not part.is_multipart() and part is not text_part and part is not html_part
        ]
        return {
            **self.summary(),
            "text": _decoded_text(text_part),
            "html": _decoded_text(html_part),
            "attachments": attachments,
        }


def _decoded_text(part: email.message.Message | None) -> str | None:
    if part is None:
        return None
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):  # unknown or lying charset: show what we can
        text = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n")


def _parse_headers(raw: bytes) -> dict[str, str | None]:
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    as_sent = None
    headers: dict[str, str | None] = {}
    for key, name in _HEADERS.items():
        try:
            value = parsed.get(name)
            malformed = value is not None and bool(value.defects)
        except Exception:  # the stdlib parser can crash on malformed headers; the message must not be lost
            malformed = True
        if malformed:  # show the header as sent rather than the parser's repair of it
            as_sent = as_sent or email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
            value = _unparsed(str(as_sent.get(name)))
        headers[key] = None if value is None else str(value)
    return headers


def _unparsed(value: str) -> str:
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, UnicodeError, email.errors.HeaderParseError):
        return value


def _write_message(store_dir: Path, message: StoredMessage) -> None:
    envelope = {"mail_from": message.mail_from, "rcpt_tos": list(message.rcpt_tos), "received_at": message.received_at}
    for suffix, data in ((".eml", message.raw), (".json", json.dumps(envelope).encode())):
        tmp = store_dir / f".{message.id}{suffix}.tmp"
        tmp.write_bytes(data)
        tmp.replace(store_dir / f"{message.id}{suffix}")


def _stored_files(store_dir: Path) -> Iterator[tuple[int, Path]]:
    for path in store_dir.glob("*.eml"):
        if path.stem.isdigit():
            yield int(path.stem), path


def _load_messages(store_dir: Path) -> list[StoredMessage]:
    messages = []
    for msg_id, path in sorted(_stored_files(store_dir)):
        raw = path.read_bytes()
        headers = _parse_headers(raw)
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            envelope = json.loads(sidecar.read_text())
        else:  # an .eml dropped in by hand: make up the envelope from the headers
            addresses = email.utils.getaddresses([headers["to"] or ""])
            envelope = {
                "mail_from": email.utils.parseaddr(headers["from"] or "")[1],
                "rcpt_tos": [address for _, address in addresses if address],
                "received_at": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(),
            }
        messages.append(
            StoredMessage(
                id=msg_id,
                mail_from=envelope["mail_from"],
                rcpt_tos=tuple(envelope["rcpt_tos"]),
                received_at=envelope["received_at"],
                raw=raw,
                headers=headers,
            )
        )
    return messages


class _Handler:
    """aiosmtpd hooks; kept apart from SmtpSink because aiosmtpd inspects every member of its handler."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        rejection = self._sink._take_rejection("rcpt")
        if rejection is not None:
            return rejection
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rejection = self._sink._take_rejection("data")
        if rejection is not None:
            return rejection
        raw = envelope.original_content
        assert raw is not None
        return await self._sink._store(mail_from=envelope.mail_from or "", rcpt_tos=envelope.rcpt_tos, raw=raw)


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
        self._smtp_connections: weakref.WeakSet[SMTP] = weakref.WeakSet()
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
            self._messages = await asyncio.to_thread(_load_messages, self.store_dir)
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
        return [{**m.summary(), "raw": m.raw} for m in self._select(rcpt=rcpt)]

    def message(self, msg_id: int) -> dict[str, Any]:
        """One message with its decoded text/html parts, attachment list and raw bytes; KeyError if unknown."""
        stored = self._get(msg_id)
        if stored is None:
            raise KeyError(msg_id)
        return {**stored.detail(), "raw": stored.raw}

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
            for _, path in list(_stored_files(self.store_dir)):
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
        return count

    def _require_started(self) -> None:
        if self._smtp_server is None:
            raise RuntimeError("SmtpSink is not started")

    def _smtp_protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        connection = SMTP(
            self._handler,
            data_size_limit=DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            hostname="parcours-smtp-sink",  # not getfqdn(): that is a DNS lookup per connection
            ident="Parcours SMTP sink",
            loop=loop,
        )
        self._smtp_connections.add(connection)
        return connection

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
            headers=_parse_headers(raw),
        )
        self._next_id += 1
        self._messages.append(stored)
        if self.store_dir is not None:
            try:
                await asyncio.to_thread(_write_message, self.store_dir, stored)
            except OSError:
                self._messages.remove(stored)
                return "451 4.3.0 Could not store the message"
        return "250 OK"

    def _select(self, *, rcpt: str | None = None, subject_contains: str | None = None) -> list[StoredMessage]:
        selected = self._messages
        if rcpt is not None:
            selected = [m for m in selected if rcpt.lower() in (r.lower() for r in m.rcpt_tos)]
        if subject_contains is not None:
            needle = subject_contains.lower()
            selected = [m for m in selected if needle in (m.headers["subject"] or "").lower()]
        return list(selected)

    def _get(self, msg_id: int) -> StoredMessage | None:
        return next((m for m in self._messages if m.id == msg_id), None)


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

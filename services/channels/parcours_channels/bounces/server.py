"""The bounce endpoint: a real SMTP server (aiosmtpd) in the service's own loop. It accepts
mail for the bounce domain only (anything else is refused at RCPT: we are no relay), hands
each message to the intake, and answers 451 only when recording failed, so that the sender
tries again later."""

from __future__ import annotations

import asyncio
import logging
import socket
import weakref

from aiosmtpd.smtp import SMTP, Envelope, Session

from parcours_channels.bounces.intake import take_bounce
from parcours_runtime.service import ServiceContext

log = logging.getLogger(__name__)

BOUNCE_ENDPOINT = "bounce_endpoint"  # key of the running BounceEndpoint in ServiceContext.extras


class _Hooks:
    """aiosmtpd's handler; apart from BounceEndpoint because aiosmtpd inspects every member of it."""

    def __init__(self, ctx: ServiceContext):
        self._ctx = ctx

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.rpartition("@")[2].lower() != self._ctx.settings.bounce_domain.lower():
            return "550 5.7.1 Not a bounce address of this host"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            await take_bounce(ctx=self._ctx, rcpt_tos=list(envelope.rcpt_tos), raw=raw)
        except Exception:
            log.exception("bounce not recorded; the sender will retry")
            return "451 4.3.0 Bounce not recorded, try again later"
        return "250 OK"


class BounceEndpoint:
    def __init__(self, ctx: ServiceContext):
        self._ctx = ctx
        self._hooks = _Hooks(ctx)
        self._server: asyncio.base_events.Server | None = None
        self._connections: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.port: int | None = None

    async def start(self) -> None:
        """Listen on bounce_smtp_host:bounce_smtp_port."""
        settings = self._ctx.settings
        loop = asyncio.get_running_loop()
        sock = _listen(settings.bounce_smtp_host, settings.bounce_smtp_port,
                       may_move=not settings.is_production)
        self.port = sock.getsockname()[1]
        self._server = await loop.create_server(lambda: self._protocol(loop), sock=sock)
        log.info("bounce endpoint on %s:%d for @%s", settings.bounce_smtp_host, self.port, settings.bounce_domain)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.close()
        await self._server.wait_closed()
        self._server = None

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        settings = self._ctx.settings
        connection = SMTP(self._hooks, data_size_limit=settings.bounce_max_bytes, enable_SMTPUTF8=True,
                          hostname=settings.bounce_domain,  # not getfqdn(): a DNS lookup per connection
                          ident="Parcours bounce endpoint", loop=loop)
        self._connections.add(connection)
        return connection


def _listen(host: str, port: int, *, may_move: bool) -> socket.socket:
    """Bind now, so the real port is known. Outside production a taken port (another stack or
    test run on the same machine) moves to a free one rather than failing the service."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError:
        if not may_move or port == 0:
            raise
        sock = socket.create_server((host, 0), family=family)
        log.warning("bounce endpoint port %d is taken; listening on %d instead", port, sock.getsockname()[1])
        return sock

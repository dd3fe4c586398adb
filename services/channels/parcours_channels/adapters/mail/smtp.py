"""Handing messages to the SMTP relay, and what its answer means for the dispatch.

`SmtpPool` keeps up to `smtp_concurrency` SMTP sessions open and reuses them message after
message (a new TCP + EHLO (+ STARTTLS + AUTH) per message would cost more than the message).
Sends are paced per destination domain and per tenant, and at most `smtp_max_per_domain`
go to one domain at once. A 5xx on RCPT or DATA refuses the recipient for good; any other
failure (4xx, connection, and 5xx on AUTH/MAIL FROM/EHLO, which is our configuration and
not the recipient's fault) is transient: the recipient goes to the deferred retries
(adapters/deferred.py). A session is reused only after an answer that leaves it clean (the
client resets the envelope after a refusal); anything else closes it, and a session idle for
`smtp_idle_seconds` is closed. The sessions are ours (session.py): they pipeline the envelope
when the relay offers PIPELINING."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from parcours_channels.adapters import RecipientRefused, TransientDeliveryError
from parcours_channels.adapters.mail.compose import ComposedMessage
from parcours_channels.adapters.mail.session import SmtpReply, SmtpSession
from parcours_channels.adapters.throttle import KeyedLimit, RatePacer
from parcours_channels.config import Settings

log = logging.getLogger(__name__)

SMTP_POOL = "smtp_pool"  # key of the SmtpPool in ServiceContext.extras


class SmtpPool:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._slots = asyncio.Semaphore(settings.smtp_concurrency)
        self._idle: list[tuple[SmtpSession, float]] = []  # (session, when it was last used)
        self._per_domain = KeyedLimit(settings.smtp_max_per_domain)
        self._domain_pace = RatePacer(settings.smtp_domain_rate, burst=settings.smtp_max_per_domain or 1)
        self._tenant_pace = RatePacer(settings.smtp_tenant_rate)
        self._reaper: asyncio.Task | None = None
        self.sessions_opened = 0

    async def send(self, message: ComposedMessage | Callable[[], ComposedMessage], *, tenant_id: str,
                   envelope_sender: str | None = None, recipients: list[str] | None = None,
                   on_accepted: Callable[[], Awaitable[None]] | None = None) -> None:
        """Hand `message` over (bounces go to `envelope_sender`, else to From; to `recipients`, else
        to its recipient); RecipientRefused on a permanent refusal,
        TransientDeliveryError otherwise. `on_accepted` runs as soon as the relay has taken the
        message: the shorter the gap between the relay's 250 and our record of it, the smaller
        the window in which a crash makes a retry send it again.

        `message` may be the function that composes it (then `recipients` are needed): it runs once a
        session is free, so that a polled batch of hundreds of dispatches holds no more composed messages
        at once than there are sessions (they were all composed first, then waited for one)."""
        if recipients is None:
            if callable(message):
                raise TypeError("a message composed later needs its recipients")
            recipients = [message.recipient]
        domain = recipients[0].rpartition("@")[2].lower()
        async with self._per_domain.slot(domain):
            await self._tenant_pace.wait(tenant_id)
            await self._domain_pace.wait(domain)
            async with self._slots:
                if callable(message):
                    message = message()
                sender = envelope_sender or message.sender
                session = await self._checkout()
                reusable = False
                try:
                    await session.send(sender, recipients, message.wire)
                    reusable = True
                except SmtpReply as exc:
                    if exc.stage not in ("rcpt", "data"):  # MAIL FROM refused: our configuration, not theirs
                        raise TransientDeliveryError(f"SMTP relay answered {exc.code} {exc.text}") from exc
                    reusable = exc.code != 421  # 421: the server is closing the session
                    raise _meaning(exc) from exc
                except OSError as exc:  # also timeouts, TLS errors, a session the relay dropped
                    raise TransientDeliveryError(f"SMTP relay unreachable: {type(exc).__name__}: {exc}") from exc
                finally:
                    await self._checkin(session, reusable)
        if on_accepted is not None:
            # The session carries the next message meanwhile; a failure to record is the caller's own
            # (a database away), never taken for the relay's.
            await on_accepted()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(session) for session, _ in idle))

    async def _checkout(self) -> SmtpSession:
        now = time.monotonic()
        while self._idle:
            session, last_used = self._idle.pop()
            if session.is_connected and now - last_used < self._settings.smtp_idle_seconds:
                return session
            await _quit(session)  # the relay may have dropped it meanwhile: not worth a failed send
        s = self._settings
        try:
            session = await SmtpSession.open(
                host=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                starttls=s.smtp_starttls, timeout=s.smtp_timeout,
                local_hostname=s.message_id_domain,  # not getfqdn(): a DNS lookup per connection
            )
        except SmtpReply as exc:
            raise TransientDeliveryError(f"SMTP relay answered {exc.code} {exc.text}") from exc
        except OSError as exc:
            raise TransientDeliveryError(f"SMTP relay unreachable: {type(exc).__name__}: {exc}") from exc
        self.sessions_opened += 1
        return session

    async def _checkin(self, session: SmtpSession, reusable: bool) -> None:
        if reusable and session.is_connected:
            self._idle.append((session, time.monotonic()))
            if self._reaper is None or self._reaper.done():
                self._reaper = asyncio.get_running_loop().create_task(self._reap())
        else:
            await _quit(session)

    async def _reap(self) -> None:
        """Close sessions idle for `smtp_idle_seconds`: an idle session holds a socket and a process
        on the relay, which drops it sooner or later anyway."""
        idle_for = self._settings.smtp_idle_seconds
        while self._idle:
            await asyncio.sleep(max(0.0, min(last for _, last in self._idle) + idle_for - time.monotonic()))
            now = time.monotonic()
            expired = [session for session, last in self._idle if now - last >= idle_for]
            self._idle = [(session, last) for session, last in self._idle if now - last < idle_for]
            await asyncio.gather(*(_quit(session) for session in expired))


async def _quit(session: SmtpSession) -> None:
    try:
        if session.is_connected:
            await asyncio.wait_for(session.quit(), timeout=2)
    except (OSError, TimeoutError) as exc:
        log.debug("closing an SMTP session: %r", exc)
    session.close()


def _meaning(exc: SmtpReply) -> Exception:
    answer = f"SMTP {exc.code} {exc.text}"
    return RecipientRefused(answer) if exc.code >= 500 else TransientDeliveryError(answer)

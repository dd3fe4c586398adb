"""Handing one message to the SMTP relay, and what its answer means for the dispatch.

One connection per message, at most `smtp_concurrency` at once (connection pooling is
future work). A 5xx on RCPT or DATA refuses the recipient for good; any other failure
(4xx, connection, and 5xx on AUTH/MAIL FROM/EHLO, which is our configuration and not the
recipient's fault) is transient, so the consumer retries the event and then dead-letters it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib

from parcours_channels.adapters import RecipientRefused, TransientDeliveryError
from parcours_channels.adapters.mail.compose import to_wire
from parcours_channels.config import Settings

SMTP_SLOTS = "smtp_slots"  # key of the asyncio.Semaphore in ServiceContext.extras


async def send_mail(message: EmailMessage, *, settings: Settings, slots: asyncio.Semaphore,
                    envelope_sender: str | None = None,
                    on_accepted: Callable[[], Awaitable[None]] | None = None) -> None:
    """Hand `message` over (bounces go to `envelope_sender`, else to From); RecipientRefused on a
    permanent refusal, TransientDeliveryError otherwise. `on_accepted` runs as soon as the relay
    has taken the message, before QUIT: the shorter the gap between the relay's 250 and our
    record of it, the smaller the window in which a crash makes a retry send it again."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    sender = envelope_sender or message["From"].addresses[0].addr_spec
    recipients = [address.addr_spec for address in message["To"].addresses]
    async with slots:
        try:
            client = aiosmtplib.SMTP(
                hostname=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
                password=password, start_tls=settings.smtp_starttls, timeout=settings.smtp_timeout,
                local_hostname=settings.message_id_domain,  # not getfqdn(): a DNS lookup per connection
            )
            async with client:
                await client.sendmail(sender, recipients, to_wire(message))
                if on_accepted is not None:
                    await on_accepted()
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _meaning(exc.recipients[0]) from exc
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
            raise _meaning(exc) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise TransientDeliveryError(f"SMTP relay answered {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(f"SMTP relay unreachable: {type(exc).__name__}: {exc}") from exc


def _meaning(exc: aiosmtplib.SMTPResponseException) -> Exception:
    answer = f"SMTP {exc.code} {exc.message}"
    return RecipientRefused(answer) if exc.code >= 500 else TransientDeliveryError(answer)

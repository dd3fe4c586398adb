"""Send each recipient its message at most once per dispatch, across crashes and redeliveries.

The ledger row of a recipient is written before the send and marked 'sent' in its own
transaction right after the transport accepted, so the handler's transaction rolling back
(a crash, a later recipient's 4xx) never makes a retry send that recipient again. Both
writes are group commits: the claims and acceptances of the deliveries in flight at the
same moment share one transaction (a few milliseconds' wait, one round trip for many).

A recipient the transport puts off (SMTP 4xx, relay away) does not hold up the event: its row
gets a next attempt and the deferred retries (adapters/deferred.py) take it from there; the
dispatch's outcome is then reported once its last recipient is settled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol
from uuid import UUID

from sqlalchemy import Row

from parcours_channels.adapters import RecipientRefused, TransientDeliveryError
from parcours_channels.domain.outcome import DeliveryResult, RetrySchedule
from parcours_channels.domain.wording import recipient_key
from parcours_channels.store.deferrals import defer, give_up
from parcours_channels.store.sends import ACCEPTED, FAILED, SENDING, Claim, claim_recipients, mark_sent
from parcours_contracts import DispatchRequested, Recipient, SentMessage
from parcours_runtime.handlers import PermanentError
from parcours_runtime.db import autocommit
from parcours_runtime.group_commit import GroupCommit
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)

# (recipient, message id, record): sends, awaits `record()` the moment the transport accepted; raises if not accepted
SendOne = Callable[[Recipient, str, Callable[[], Awaitable[None]]], Awaitable[None]]


class LedgerAdapter(Protocol):
    """An adapter sending through this ledger: what the deferred retries call to send again."""

    async def sender(self, request: DispatchRequested, ctx: ServiceContext) -> SendOne: ...


SEND_LEDGER = "send_ledger"  # key of the SendLedger in ServiceContext.extras


class SendLedger:
    """The send-once ledger's writes, grouped across the deliveries in flight."""

    def __init__(self, ctx: ServiceContext):
        self._engine = ctx.engine
        # No window: a write starts at once when none is in flight, and what arrives while one is goes
        # together next. Under load groups grow with the commit's time (flat out 0.2 ledger transactions
        # per invoice, against 0.3 with a 2 ms window) while a lone acceptance waits for nothing: until
        # it is recorded, a crash sends its message again (same Message-ID). A 10 ms window had grouped
        # as much, but the chaos run (kill -9 under load) then resent 4 messages where it resent none.
        self.claims = GroupCommit(self._claim, window_seconds=0, max_in_flight=1)
        self.acceptances = GroupCommit(self._accept, window_seconds=0, max_in_flight=1)

    # Each write is one statement, committed on its own (no BEGIN/COMMIT round trips): the claims must
    # outlive a rollback of the batch, and an acceptance must be durable before anything else happens.
    async def _claim(self, claims: list[Claim]) -> list[dict[str, Row]]:
        async with autocommit(self._engine) as connection:
            return await claim_recipients(connection, claims)

    async def record_accepted(self, tenant_id: str, dispatch_id: UUID, recipient: str) -> None:
        await self.acceptances.submit((tenant_id, dispatch_id, recipient_key(recipient)))

    async def _accept(self, accepted: list[tuple[str, UUID, str]]) -> list[None]:
        async with autocommit(self._engine) as connection:
            await mark_sent(connection, accepted)
        return [None] * len(accepted)


def send_ledger(ctx: ServiceContext) -> SendLedger:
    if SEND_LEDGER not in ctx.extras:
        ctx.extras[SEND_LEDGER] = SendLedger(ctx)
    return ctx.extras[SEND_LEDGER]


async def deliver_once(request: DispatchRequested, ctx: ServiceContext, *, message_id_for: Callable[[str], str],
                       send_one: SendOne) -> DeliveryResult:
    """Send to every recipient not yet sent, in parallel; the result lists everyone sent so far."""
    recipients = unique_recipients(request.recipients)
    ledgers = send_ledger(ctx)
    ledger = await ledgers.claims.submit(Claim(
        tenant_id=request.tenant_id, invoice_id=request.invoice_id, dispatch_id=request.dispatch_id,
        channel=request.channel, purpose=request.purpose, correlation_id=request.correlation_id,
        message_ids={recipient_key(r.email): message_id_for(r.email) for r in recipients},
    ))
    if any(recipient_key(r.email) not in ledger for r in recipients):
        raise PermanentError(f"dispatch {request.dispatch_id} is already recorded for another tenant")

    # Only rows still 'sending': a message accepted earlier ('sent', or 'bounced' since) never goes
    # twice; nor does one the deferred retries own (scheduled): they are its only sender.
    rows = {r.email: ledger[recipient_key(r.email)] for r in recipients}
    pending = [r for r in recipients if rows[r.email].state == SENDING and rows[r.email].next_attempt_at is None]
    scheduled = any(row.state == SENDING and row.next_attempt_at is not None for row in rows.values())

    async def send_and_record(recipient: Recipient) -> None:
        await send_one(recipient, rows[recipient.email].message_id,
                       lambda: ledgers.record_accepted(request.tenant_id, request.dispatch_id, recipient.email))

    outcomes = dict(zip((r.email for r in pending),
                        await asyncio.gather(*(send_and_record(r) for r in pending), return_exceptions=True)))
    refused = {address: str(o) for address, o in outcomes.items() if isinstance(o, RecipientRefused)}
    put_off = {address: str(o) for address, o in outcomes.items() if isinstance(o, TransientDeliveryError)}
    for outcome in outcomes.values():
        if isinstance(outcome, BaseException) and not isinstance(outcome, RecipientRefused | TransientDeliveryError):
            raise outcome  # retry the event: those accepted are recorded and will not be sent again
    now, schedule = datetime.now(timezone.utc), retry_schedule(ctx)
    retries = {}
    for address, error in put_off.items():
        if (at := schedule.next_attempt(now, attempts_made=rows[address].attempts)) is None:
            refused[address] = f"gave up after {rows[address].attempts} attempt(s): {error}"
        else:
            retries[recipient_key(address)] = (at, error)
    if refused:
        log.warning("dispatch %s: %d recipient(s) refused for good", request.dispatch_id, len(refused))
    if retries or scheduled or refused:
        async with UnitOfWork(ctx.sessions) as uow:
            for address, reason in refused.items():  # never tried again, even by a redelivered dispatch
                await give_up(uow.session, rows[address], error=reason)
            if retries or scheduled:
                log.info("dispatch %s: %d recipient(s) put off, retried later", request.dispatch_id, len(retries))
                await defer(uow.session, tenant_id=request.tenant_id, dispatch_id=request.dispatch_id,
                            request=request.model_dump(mode="json"), refused=refused, put_off=retries)
            await uow.commit()
        if retries or scheduled:
            return DeliveryResult(deferred=True)
    return settled_result(recipients, rows, sent_now={a for a, o in outcomes.items() if o is None}, refused=refused)


def settled_result(recipients: list[Recipient], rows: dict[str, Row], *, sent_now: set[str],
                   refused: dict[str, str]) -> DeliveryResult:
    """Every recipient settled: the messages accepted (now or earlier) and why the others were not."""
    messages = tuple(SentMessage(recipient=r.email, message_id=rows[r.email].message_id) for r in recipients
                     if r.email in sent_now or rows[r.email].state in ACCEPTED)
    reasons = {**{r.email: rows[r.email].last_error or "failed" for r in recipients if rows[r.email].state == FAILED},
               **refused}
    failure = "; ".join(f"{address}: {reason}" for address, reason in reasons.items()) or None
    return DeliveryResult(messages=messages, failure=failure, permanent=True)


def retry_schedule(ctx: ServiceContext) -> RetrySchedule:
    s = ctx.settings
    return RetrySchedule(first=timedelta(seconds=s.smtp_retry_first_seconds),
                         longest=timedelta(seconds=s.smtp_retry_longest_seconds), attempts=s.smtp_retry_attempts)


def unique_recipients(recipients: list[Recipient]) -> list[Recipient]:
    """One message per mailbox, even if the request names it twice."""
    by_key: dict[str, Recipient] = {}
    for recipient in recipients:
        by_key.setdefault(recipient_key(recipient.email), recipient)
    return list(by_key.values())

"""Send each recipient its message at most once per dispatch, across crashes and redeliveries.

The ledger row of a recipient is written before the send and marked 'sent' in its own
transaction right after the transport accepted, so the handler's transaction rolling back
(a crash, a later recipient's 4xx) never makes a retry send that recipient again. Both
writes are group commits: the claims and acceptances of the deliveries in flight at the
same moment share one transaction (a few milliseconds' wait, one round trip for many)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

from parcours_channels.adapters import RecipientRefused
from parcours_channels.domain.outcome import DeliveryResult
from parcours_channels.domain.wording import recipient_key
from parcours_channels.store.sends import SENDING, Claim, Send, claim_recipients, mark_sent
from parcours_contracts import DispatchRequested, Recipient, SentMessage
from parcours_runtime.consumer import PermanentError
from parcours_runtime.group_commit import GroupCommit
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)

# (recipient, message id, record): sends, awaits `record()` the moment the transport accepted; raises if not accepted
SendOne = Callable[[Recipient, str, Callable[[], Awaitable[None]]], Awaitable[None]]


SEND_LEDGER = "send_ledger"  # key of the SendLedger in ServiceContext.extras


class SendLedger:
    """The send-once ledger's writes, grouped across the deliveries in flight."""

    def __init__(self, ctx: ServiceContext):
        self._sessions = ctx.sessions
        self.claims = GroupCommit(self._claim)
        self.acceptances = GroupCommit(self._accept)

    async def _claim(self, claims: list[Claim]) -> list[dict[str, Send]]:
        async with UnitOfWork(self._sessions) as uow:  # committed at once: the rows must outlive a rollback
            ledgers = await claim_recipients(uow.session, claims)
            await uow.commit()
        return ledgers

    async def _accept(self, accepted: list[tuple[str, UUID, str]]) -> list[None]:
        async with UnitOfWork(self._sessions) as uow:
            await mark_sent(uow.session, accepted)
            await uow.commit()
        return [None] * len(accepted)


def send_ledger(ctx: ServiceContext) -> SendLedger:
    if SEND_LEDGER not in ctx.extras:
        ctx.extras[SEND_LEDGER] = SendLedger(ctx)
    return ctx.extras[SEND_LEDGER]


async def deliver_once(request: DispatchRequested, ctx: ServiceContext, *, message_id_for: Callable[[str], str],
                       send_one: SendOne) -> DeliveryResult:
    """Send to every recipient not yet sent, in parallel; the result lists everyone sent so far."""
    recipients = _unique(request.recipients)
    ledgers = send_ledger(ctx)
    ledger = await ledgers.claims.submit(Claim(
        tenant_id=request.tenant_id, invoice_id=request.invoice_id, dispatch_id=request.dispatch_id,
        channel=request.channel, purpose=request.purpose, correlation_id=request.correlation_id,
        message_ids={recipient_key(r.email): message_id_for(r.email) for r in recipients},
    ))
    if any(recipient_key(r.email) not in ledger for r in recipients):
        raise PermanentError(f"dispatch {request.dispatch_id} is already recorded for another tenant")

    # Only rows still 'sending': a message accepted earlier ('sent', or 'bounced' since) never goes twice.
    pending = [r for r in recipients if ledger[recipient_key(r.email)].state == SENDING]

    async def send_and_record(recipient: Recipient) -> None:
        async def record() -> None:
            await ledgers.acceptances.submit((request.tenant_id, request.dispatch_id, recipient_key(recipient.email)))

        await send_one(recipient, ledger[recipient_key(recipient.email)].message_id, record)

    outcomes = await asyncio.gather(*(send_and_record(r) for r in pending), return_exceptions=True)
    refused = {recipient_key(r.email): o for r, o in zip(pending, outcomes) if isinstance(o, RecipientRefused)}
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, RecipientRefused):
            raise outcome  # retry the event: those accepted are recorded and will not be sent again
    if refused:
        log.warning("dispatch %s: %d recipient(s) refused for good", request.dispatch_id, len(refused))
    messages = tuple(
        SentMessage(recipient=r.email, message_id=ledger[recipient_key(r.email)].message_id)
        for r in recipients if recipient_key(r.email) not in refused
    )
    failure = "; ".join(f"{address}: {reason}" for address, reason in refused.items()) or None
    return DeliveryResult(messages=messages, failure=failure, permanent=True)


def _unique(recipients: list[Recipient]) -> list[Recipient]:
    """One message per mailbox, even if the request names it twice."""
    by_key: dict[str, Recipient] = {}
    for recipient in recipients:
        by_key.setdefault(recipient_key(recipient.email), recipient)
    return list(by_key.values())

"""Submit a dispatch to a partner at most once, across crashes and redeliveries.

The dispatch's `partner_submissions` row is claimed ('sending') and committed before the
partner is called; what the partner answered is recorded, with the events it causes, in one
transaction. A redelivered dispatch whose row is past 'sending' is answered from the row
without calling the partner again. A crash between the partner's answer and that record
leaves the row 'sending': the next attempt first asks `find_earlier` (does the partner already
have it?) or sends again under the same reference, which the partner deduplicates (an AS2
Message-ID, an Idempotency-Key).

One retry policy for every partner: a partner that is away (`PartnerUnavailable`) makes the
consumer try the dispatch again, with its backoff, until the row has seen `attempts_allowed`
attempts (channels' `partner_max_attempts`, kept below the consumer's own limit so the event never
ends in the DLQ); then the submission is failed and the dispatch fails for good, so router falls back."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from parcours_channels.adapters import PartnerUnavailable
from parcours_channels.domain.outcome import DeliveryResult
from parcours_channels.store.partner_submissions import (
    ACKNOWLEDGED,
    DONE,
    FAILED,
    REJECTED,
    SENDING,
    SUBMITTED,
    PartnerSubmission,
    claim_submission,
    record_outcome,
)
from parcours_contracts import DeliveryAcked, DispatchFailed, DispatchRequested, SentMessage
from parcours_contracts.events import InvoiceEvent
from parcours_runtime import inbox
from parcours_runtime.handlers import PermanentError
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)


class PartnerRefused(Exception):
    """The partner (or a check before calling it) refused the submission for good: router falls back."""


@dataclass(frozen=True)
class Accepted:
    """The partner took the submission: its reference, its word for it, when to follow it up, and
    the events this means (e.g. the acknowledgement that came with the answer)."""

    partner_ref: str
    last_status: str | None = None
    next_check_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    state: str = SUBMITTED
    events: tuple[InvoiceEvent, ...] = ()


Submit = Callable[[PartnerSubmission], Awaitable[Accepted]]
DISPATCH_EVENT = "dispatch_event_id"  # in a submission's detail: the DispatchRequested it answers
FindEarlier = Callable[[PartnerSubmission], Awaitable[Accepted | None]]


async def submit_once(request: DispatchRequested, ctx: ServiceContext, *, partner: str, submit: Submit,
                      find_earlier: FindEarlier | None = None) -> DeliveryResult:
    """Call `submit` unless an earlier attempt already got an answer; record that answer."""
    async with UnitOfWork(ctx.sessions) as uow:  # committed at once: the claim must outlive a rollback
        row = await claim_submission(uow.session, tenant_id=request.tenant_id, invoice_id=request.invoice_id,
                                     dispatch_id=request.dispatch_id, channel=request.channel, partner=partner,
                                     purpose=request.purpose, correlation_id=request.correlation_id)
        await uow.commit()
    if row is None or row.channel != request.channel:
        raise PermanentError(f"dispatch {request.dispatch_id} is already recorded for another tenant or channel")
    if row.state != SENDING:
        return result_of(request, row)

    try:
        accepted = await find_earlier(row) if find_earlier is not None and row.attempts > 1 else None
        if accepted is None:
            accepted = await submit(row)
    except PartnerRefused as refused:
        reason = str(refused)[:2000]
        log.warning("dispatch %s refused by %s: %s", request.dispatch_id, partner, reason)
        await _record(ctx, row, state=REJECTED, last_status=reason[:64], detail={**(row.detail or {}), "reason": reason})
        return DeliveryResult.failed(f"{partner}: {reason}")
    except PartnerUnavailable as away:
        if not last_attempt(row, ctx):
            raise  # the consumer tries again after its backoff
        reason = f"unavailable after {row.attempts} attempts: {away}"[:2000]
        log.warning("dispatch %s: %s %s", request.dispatch_id, partner, reason)
        await _record(ctx, row, state=FAILED, last_status="unavailable", detail={**(row.detail or {}), "reason": reason})
        return DeliveryResult.failed(f"{partner}: {reason}")
    # The request's event id: a partner's later answer waits until the dispatch itself is recorded.
    await _record(ctx, row, state=accepted.state, last_status=accepted.last_status, partner_ref=accepted.partner_ref,
                  next_check_at=accepted.next_check_at, events=accepted.events,
                  detail={**(row.detail or {}), **accepted.detail, DISPATCH_EVENT: str(request.event_id)})
    return dispatched(request, accepted.partner_ref)


def attempts_allowed(ctx: ServiceContext) -> int:
    """Attempts of one submission before a partner still away fails it: the setting, but never more
    than the consumer's (whose last failure would dead-letter the dispatch instead). A submission
    counts at least one attempt per consumer attempt, so it always gives up first."""
    settings = ctx.settings
    return max(1, min(settings.partner_max_attempts, settings.consumer_max_attempts))


def last_attempt(row: PartnerSubmission, ctx: ServiceContext) -> bool:
    """Whether this attempt is the submission's last one (adapters decide what no answer means then)."""
    return row.attempts >= attempts_allowed(ctx)


async def _record(ctx: ServiceContext, row: PartnerSubmission, *, events: tuple[InvoiceEvent, ...] = (),
                  **values: Any) -> None:
    async with UnitOfWork(ctx.sessions) as uow:
        await record_outcome(uow.session, dispatch_id=row.dispatch_id, **values)
        for event in events:
            uow.publish(event)
        await uow.commit()


def result_of(request: DispatchRequested, row: PartnerSubmission) -> DeliveryResult:
    """What an earlier attempt ended with. A submission the partner took (it has the partner's
    reference) was dispatched, whatever came later: a later refusal was published on its own."""
    if row.state in (SUBMITTED, ACKNOWLEDGED, DONE) or (row.partner_ref and row.state in (REJECTED, FAILED)):
        return dispatched(request, row.partner_ref or str(request.dispatch_id))
    if row.state in (REJECTED, FAILED):
        reason = (row.detail or {}).get("reason") or row.last_status or row.state
        return DeliveryResult.failed(f"{row.partner}: {reason}")
    raise PermanentError(f"dispatch {request.dispatch_id} is in an unknown state {row.state!r}")


def dispatched(request: DispatchRequested, reference: str) -> DeliveryResult:
    """Handed over to the partner: one message, named by the partner's reference, for the first
    recipient of the request (the buyer's contact the partner delivers to)."""
    return DeliveryResult(messages=(SentMessage(recipient=request.recipients[0].email, message_id=reference),))


def acked_after(row: PartnerSubmission, *, channel: str, ack_id: str, status: str, at: datetime) -> DeliveryAcked:
    """A partner's later acknowledgement of a submission (a follow-up, a webhook, an async MDN)."""
    return DeliveryAcked(tenant_id=row.tenant_id, invoice_id=row.invoice_id,
                         correlation_id=row.correlation_id or str(row.invoice_id), channel=channel,
                         ack_id=ack_id[:200], status=status, acked_at=at)


async def dispatch_recorded(ctx: ServiceContext, row: PartnerSubmission) -> bool:
    """Whether the dispatch this submission answers has its outcome recorded (and InvoiceDispatched on
    its way): an asynchronous answer that came sooner waits, so the refusal never precedes the dispatch."""
    event_id = (row.detail or {}).get(DISPATCH_EVENT)
    if event_id is None:
        return True
    async with ctx.sessions() as session:
        return bool(await inbox.already_processed(session, ctx.name, [UUID(event_id)]))


def failed_after(row: PartnerSubmission, *, channel: str, reason: str) -> DispatchFailed:
    """A partner's later refusal of a submission: permanent, so router tries the dispatch's fallbacks."""
    return DispatchFailed(tenant_id=row.tenant_id, invoice_id=row.invoice_id,
                          correlation_id=row.correlation_id or str(row.invoice_id), dispatch_id=row.dispatch_id,
                          channel=channel, purpose=row.purpose, reason=reason[:2000], permanent=True,
                          fallback_channels=list((row.detail or {}).get("fallback_channels", [])))

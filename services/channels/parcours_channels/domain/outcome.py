"""What a delivery attempt ended with, and the one event that tells the others."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from parcours_contracts import DispatchFailed, DispatchRequested, InvoiceDispatched, SentMessage

_REASON_MAX = 2000  # DispatchFailed.reason's limit


@dataclass(frozen=True)
class DeliveryResult:
    """Messages the transport accepted (now or on an earlier attempt), and why the others were not."""

    messages: tuple[SentMessage, ...] = ()
    failure: str | None = None
    permanent: bool = True
    deferred: bool = False  # some recipients wait on deferred retries: they report the outcome later

    @classmethod
    def failed(cls, reason: str, *, permanent: bool = True) -> DeliveryResult:
        return cls(failure=reason, permanent=permanent)


@dataclass(frozen=True)
class RetrySchedule:
    """When a recipient the relay put off (SMTP 4xx: greylisting, a full mailbox, a busy server) is
    tried again: `first` after the first attempt, doubling up to `longest`; none after `attempts`."""

    first: timedelta
    longest: timedelta
    attempts: int

    def next_attempt(self, now: datetime, *, attempts_made: int) -> datetime | None:
        """When to try again after `attempts_made` attempts; None: give up."""
        if attempts_made >= self.attempts:
            return None
        return now + min(self.first * 2 ** min(max(attempts_made - 1, 0), 30), self.longest)


def outcome_event(request: DispatchRequested, result: DeliveryResult) -> InvoiceDispatched | DispatchFailed:
    """InvoiceDispatched as soon as one recipient accepted the message; DispatchFailed only when none did.

    A partial refusal does not fail the dispatch: failing it would make router re-deliver on a
    fallback channel to the recipients who already have the invoice."""
    common = dict(dispatch_id=request.dispatch_id, channel=request.channel, purpose=request.purpose,
                  reminder=request.reminder)
    if result.messages:
        return InvoiceDispatched.following(request, messages=list(result.messages), **common)
    reason = result.failure or "no recipient accepted the message"
    if len(reason) > _REASON_MAX:
        reason = reason[:_REASON_MAX - 1] + "…"
    return DispatchFailed.following(request, reason=reason, permanent=result.permanent,
                                    fallback_channels=list(request.fallback_channels), **common)

"""What a delivery attempt ended with, and the one event that tells the others."""

from __future__ import annotations

from dataclasses import dataclass

from parcours_contracts import DispatchFailed, DispatchRequested, InvoiceDispatched, SentMessage

_REASON_MAX = 2000  # DispatchFailed.reason's limit


@dataclass(frozen=True)
class DeliveryResult:
    """Messages the transport accepted (now or on an earlier attempt), and why the others were not."""

    messages: tuple[SentMessage, ...] = ()
    failure: str | None = None
    permanent: bool = True

    @classmethod
    def failed(cls, reason: str, *, permanent: bool = True) -> DeliveryResult:
        return cls(failure=reason, permanent=permanent)


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

"""Which channel delivers, which ones are kept in reserve, and why a delivery cannot be routed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# InvoiceUnroutable field limits
MAX_REF = 64
MAX_REASON = 2000


@dataclass(frozen=True)
class Route:
    """Deliver on `channel`; if it fails for good, try `fallback_channels` in order."""

    channel: str
    fallback_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unroutable:
    """No channel can take the delivery."""

    reason: str


def first_route(*, preferred: Sequence[str], offered: Sequence[str], wanted: str | None = None) -> Route | Unroutable:
    """The customer's first preferred channel still offered, the others in reserve; a channel a
    reminder step asks for (`wanted`) goes first when the platform offers it, even if the customer
    did not choose it, with the customer's usable channels in reserve."""
    usable = [channel for channel in preferred if channel in offered]
    if wanted is not None and wanted in offered:
        return Route(wanted, tuple(channel for channel in usable if channel != wanted))
    if not usable:
        # The platform stopped offering every channel this customer chose.
        return Unroutable(clip(f"none of the customer's channels is offered any more: {', '.join(preferred)}"))
    return Route(usable[0], tuple(usable[1:]))


def after_failure(*, fallback_channels: Sequence[str], reason: str) -> Route | Unroutable:
    """After a permanent failure: the next channel in reserve, or unroutable when none is left."""
    if not fallback_channels:
        return Unroutable(clip(f"all channels failed: {reason}"))
    return Route(fallback_channels[0], tuple(fallback_channels[1:]))


def every_recipient_bounced(*, recipients: Sequence[str], bounced: Sequence[str]) -> bool:
    """Whether hard bounces came back from every recipient of a dispatch. Until they have, the
    invoice reached someone, and a fallback would deliver it twice to those it reached."""
    gone = {address.strip().lower() for address in bounced}
    return all(address.strip().lower() in gone for address in recipients)


def bounce_reason(*, recipient: str, status: str | None, diagnostic: str) -> str:
    """Why a delivery failed, from the hard bounce that ended it."""
    return clip(" ".join(part for part in ("bounced:", recipient, status, diagnostic) if part))


def unknown_customer(ref: str) -> Unroutable:
    """The invoice names a customer the tenant's directory does not have."""
    return Unroutable(clip(f"unknown customer {ref}"))


def clip(text: str, limit: int = MAX_REASON) -> str:
    """`text` cut to `limit` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"

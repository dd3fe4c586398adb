"""Channel adapters: each delivers a DispatchRequested through one transport.

An adapter is a class with a `name` and `async deliver(request, ctx) -> DeliveryResult`,
registered under that name in the `parcours.channels` entry-point group. It returns what
was accepted and, for recipients refused for good, why; it raises for anything that may
succeed later, so that the consumer retries the event."""

from __future__ import annotations

from typing import Protocol

from parcours_channels.domain.outcome import DeliveryResult
from parcours_contracts import DispatchRequested
from parcours_runtime.service import ServiceContext

__all__ = ["ChannelAdapter", "DeliveryResult", "PartnerUnavailable", "RecipientRefused", "TransientDeliveryError"]


class ChannelAdapter(Protocol):
    name: str

    async def deliver(self, request: DispatchRequested, ctx: ServiceContext) -> DeliveryResult: ...


class RecipientRefused(Exception):
    """The transport refused one recipient for good (e.g. SMTP 5xx); retrying will not help."""


class TransientDeliveryError(Exception):
    """The transport may accept later (SMTP 4xx, connection lost): the consumer retries the event."""


class PartnerUnavailable(TransientDeliveryError):
    """A delivery partner is away (unreachable, 5xx, 429, an answer its API does not describe): tried
    again with the consumer's backoff, a bounded number of times (`partner_once`), then failed for good."""

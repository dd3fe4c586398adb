"""Consumed events. DispatchRequested → the adapter registered for its channel → one event
saying how it went. An adapter raising (SMTP 4xx, relay away) makes the consumer retry."""

from __future__ import annotations

from functools import partial

from parcours_channels.adapters import ChannelAdapter
from parcours_channels.adapters.registry import ADAPTERS
from parcours_channels.domain.outcome import DeliveryResult, outcome_event
from parcours_contracts import DispatchRequested
from parcours_runtime.consumer import Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork


async def on_dispatch_requested(event: DispatchRequested, uow: UnitOfWork, *, ctx: ServiceContext) -> None:
    """Deliver through the channel's adapter; publish InvoiceDispatched or DispatchFailed."""
    adapters: dict[str, ChannelAdapter] = ctx.extras[ADAPTERS]
    adapter = adapters.get(event.channel)
    if adapter is None:
        result = DeliveryResult.failed(f"no adapter for channel {event.channel}")
    else:
        result = await adapter.deliver(event, ctx)
    uow.publish(outcome_event(event, result))


def build(ctx: ServiceContext) -> dict[type, Handler]:
    return {DispatchRequested: partial(on_dispatch_requested, ctx=ctx)}

"""Consumed events. DispatchRequested → the adapter registered for its channel → one event
saying how it went. Deliveries are outside effects: the consumer runs a polled batch of them
concurrently (each adapter is send-once through its ledger), then records the outcomes in one
transaction. A recipient put off (SMTP 4xx, relay away) goes to the deferred retries; an adapter
raising (a document unobtainable for now) makes the consumer retry."""

from __future__ import annotations

from functools import partial

from parcours_channels.adapters import ChannelAdapter
from parcours_channels.adapters.throttle import KeyedLocks
from parcours_channels.adapters.registry import ADAPTERS
from parcours_channels.domain.outcome import DeliveryResult, outcome_event
from parcours_contracts import DispatchRequested
from parcours_runtime.handlers import EffectHandler, Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork


async def deliver(event: DispatchRequested, *, ctx: ServiceContext, in_flight: KeyedLocks) -> DeliveryResult:
    """Deliver through the channel's adapter (outside any transaction). One delivery of a
    dispatch at a time: a batch may hold the same dispatch twice (a resent event), and the
    adapters' send-once ledgers rely on seeing the first delivery's outcome."""
    adapters: dict[str, ChannelAdapter] = ctx.extras[ADAPTERS]
    adapter = adapters.get(event.channel)
    if adapter is None:
        return DeliveryResult.failed(f"no adapter for channel {event.channel}")
    async with in_flight.hold(str(event.dispatch_id)):
        return await adapter.deliver(event, ctx)


async def record_outcome(event: DispatchRequested, result: DeliveryResult, uow: UnitOfWork) -> None:
    """Publish InvoiceDispatched or DispatchFailed; nothing yet when recipients wait on deferred
    retries (they report the dispatch once settled)."""
    if not result.deferred:
        uow.publish(outcome_event(event, result))


def build(ctx: ServiceContext) -> dict[type, Handler]:
    return {DispatchRequested: EffectHandler(perform=partial(deliver, ctx=ctx, in_flight=KeyedLocks()), record=record_outcome,
                                             concurrency=ctx.settings.dispatch_concurrency)}

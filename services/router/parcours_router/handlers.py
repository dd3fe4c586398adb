"""Routing on events: invoices and reminders go to the customer's preferred channel; a
permanent failure, or hard bounces from all its recipients, moves on to the next one; what
cannot go anywhere becomes InvoiceUnroutable."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from parcours_contracts import (
    DeliveryBounced,
    DispatchFailed,
    DispatchRequested,
    InvoiceReceived,
    InvoiceSummary,
    InvoiceUnroutable,
    Penalties,
    Recipient,
    RedeliveryRequested,
    ReminderDue,
    ReminderInfo,
)
from parcours_contracts.events import InvoiceEvent
from parcours_router.domain import routing
from parcours_router.store.customers import find_customers
from parcours_router.store.dispatches import (
    Dispatch,
    last_invoice_dispatch,
    lock_dispatch,
    mark_failure_handled,
    note_bounce,
    record_dispatches,
)
from parcours_runtime.handlers import BatchHandler, Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)


def build(ctx: ServiceContext) -> dict[type, Handler]:
    """The router's handler for each event type it consumes."""
    offered: list[str] = ctx.settings.channels

    async def on_invoices_received(events: list[InvoiceReceived], uow: UnitOfWork) -> None:
        await route_to_customers([Delivery(event, event.invoice, "invoice") for event in events], uow, offered=offered)

    async def on_reminders_due(events: list[ReminderDue], uow: UnitOfWork) -> None:
        await route_to_customers([Delivery(event, event.invoice, "reminder", reminder=event.reminder,
                                           penalties=event.penalties) for event in events], uow, offered=offered)

    async def on_redelivery_requested(event: RedeliveryRequested, uow: UnitOfWork) -> None:
        """A console user asks for the invoice again (resend, or on `channel`): routed like a new one,
        with the invoice as it was last dispatched."""
        last = await last_invoice_dispatch(uow.session, tenant_id=event.tenant_id, invoice_id=event.invoice_id)
        if last is None or (event.channel is not None and event.channel not in offered):
            _unroutable(event, uow, customer_ref=last.invoice["customer_ref"] if last else "", purpose="invoice",
                        reason=f"redelivery requested on {event.channel}, which is not offered" if last else
                        "redelivery requested, but the invoice was never dispatched: nothing to send again")
            return
        await route_to_customers([Delivery(event, InvoiceSummary.model_validate(last.invoice), "invoice",
                                           wanted=event.channel)], uow, offered=offered)

    return {InvoiceReceived: BatchHandler(handle=on_invoices_received),
            ReminderDue: BatchHandler(handle=on_reminders_due),
            DispatchFailed: on_dispatch_failed, DeliveryBounced: on_delivery_bounced,
            RedeliveryRequested: on_redelivery_requested}


@dataclass(frozen=True)
class Delivery:
    """Something to deliver to the invoice's customer, because of `cause`."""

    cause: InvoiceEvent
    invoice: InvoiceSummary
    purpose: str
    reminder: ReminderInfo | None = None
    penalties: Penalties | None = None
    wanted: str | None = None  # a channel asked for (redelivery); a reminder step's channel comes first


async def route_to_customers(deliveries: Sequence[Delivery], uow: UnitOfWork, *, offered: Sequence[str]) -> None:
    """Request each dispatch on its customer's first usable channel as the directory says now (on
    the wanted or reminder step's channel first, when offered): one read of the directory and one
    write of the dispatches for all of them."""
    customers = await find_customers(uow.session, keys={(delivery.cause.tenant_id, delivery.invoice.customer_ref)
                                                        for delivery in deliveries})
    requests = []
    for delivery in deliveries:
        cause, ref, reminder = delivery.cause, delivery.invoice.customer_ref, delivery.reminder
        customer = customers.get((cause.tenant_id, ref))
        if customer is None:
            decision = routing.unknown_customer(ref)
        else:
            decision = routing.first_route(preferred=customer.channels, offered=offered,
                                           wanted=reminder.channel if reminder is not None else delivery.wanted)
        if isinstance(decision, routing.Unroutable):
            _unroutable(cause, uow, customer_ref=ref, purpose=delivery.purpose, reason=decision.reason)
            continue
        recipients = [Recipient(email=contact["email"], name=contact.get("name")) for contact in customer.contacts]
        requests.append(_request(cause, uow, route=decision, recipients=recipients, purpose=delivery.purpose,
                                 reminder=reminder, invoice=delivery.invoice, language=customer.language,
                                 penalties=delivery.penalties))
    await record_dispatches(uow.session, requests=requests)


async def on_dispatch_failed(event: DispatchFailed, uow: UnitOfWork) -> None:
    """After a permanent failure, the same delivery on the next channel the router kept in reserve."""
    if not event.permanent:
        return  # the channels service retries transient failures itself
    failed = await _unhandled_dispatch(event, uow, dispatch_id=event.dispatch_id)
    if failed is not None:
        await _fall_back(event, uow, failed=failed, reason=event.reason)


async def on_delivery_bounced(event: DeliveryBounced, uow: UnitOfWork) -> None:
    """Once every recipient of a dispatch hard-bounced, the same fallback as a permanent failure."""
    if not event.permanent:
        return  # a soft bounce: the sending server keeps trying
    bounced = await _unhandled_dispatch(event, uow, dispatch_id=event.dispatch_id)
    if bounced is None:
        return
    recipients = [recipient["email"] for recipient in bounced.recipients]
    if not routing.every_recipient_bounced(recipients=recipients, bounced=note_bounce(bounced, event.recipient)):
        log.info("dispatch %s: %s bounced, other recipients were reached; no fallback", event.dispatch_id,
                 event.recipient, extra=_log_context(event))
        return
    await _fall_back(event, uow, failed=bounced, reason=routing.bounce_reason(
        recipient=event.recipient, status=event.status, diagnostic=event.diagnostic))


async def _unhandled_dispatch(event: InvoiceEvent, uow: UnitOfWork, *, dispatch_id) -> Dispatch | None:
    """The dispatch a failure report is about, locked, unless unknown or already acted on."""
    dispatch = await lock_dispatch(uow.session, tenant_id=event.tenant_id, dispatch_id=dispatch_id)
    if dispatch is None:
        log.warning("failure of dispatch %s that the router never requested; ignored", dispatch_id,
                    extra=_log_context(event))
        return None
    if dispatch.failure_handled_at is not None:
        log.info("failure of dispatch %s already acted on; ignored", dispatch_id, extra=_log_context(event))
        return None
    return dispatch


async def _fall_back(cause: InvoiceEvent, uow: UnitOfWork, *, failed: Dispatch, reason: str) -> None:
    """The failed dispatch's delivery on its next reserve channel, or InvoiceUnroutable; acted on once."""
    mark_failure_handled(failed)
    invoice = InvoiceSummary.model_validate(failed.invoice)
    # The reserve recorded with the dispatch is what counts, not the echo in the failure event.
    decision = routing.after_failure(fallback_channels=failed.fallback_channels, reason=reason)
    if isinstance(decision, routing.Unroutable):
        _unroutable(cause, uow, customer_ref=invoice.customer_ref, purpose=failed.purpose, reason=decision.reason)
        return
    request = _request(
        cause, uow, route=decision, purpose=failed.purpose, invoice=invoice,
        recipients=[Recipient.model_validate(recipient) for recipient in failed.recipients],
        reminder=ReminderInfo.model_validate(failed.reminder) if failed.reminder else None,
        language=failed.language,
        penalties=Penalties.model_validate(failed.penalties) if failed.penalties else None,
    )
    await record_dispatches(uow.session, requests=[request])


def _log_context(event: InvoiceEvent) -> dict:
    return {"tenant_id": event.tenant_id, "invoice_id": event.invoice_id, "event_id": event.event_id}


def _request(cause: InvoiceEvent, uow: UnitOfWork, *, route: routing.Route, recipients: list[Recipient],
             purpose: str, reminder: ReminderInfo | None, invoice: InvoiceSummary, language: str | None,
             penalties: Penalties | None = None) -> DispatchRequested:
    """Publish the dispatch request; the caller records it."""
    request = DispatchRequested.following(
        cause, channel=route.channel, fallback_channels=list(route.fallback_channels), recipients=recipients,
        purpose=purpose, reminder=reminder, invoice=invoice, language=language, penalties=penalties,
    )
    uow.publish(request)
    return request


def _unroutable(cause: InvoiceEvent, uow: UnitOfWork, *, customer_ref: str, purpose: str, reason: str) -> None:
    log.info("invoice unroutable: %s", reason,
             extra={"tenant_id": cause.tenant_id, "invoice_id": cause.invoice_id, "event_id": cause.event_id})
    uow.publish(InvoiceUnroutable.following(cause, customer_ref=routing.clip(customer_ref, routing.MAX_REF),
                                            purpose=purpose, reason=reason))

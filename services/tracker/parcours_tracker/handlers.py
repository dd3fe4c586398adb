"""One function per consumed event: turn it into a journal entry, re-project, publish what changed.

Events arrive in any order and possibly more than once; `journeys.record` ignores an event id
it already holds (including the LinkClicked and DeliveryAcked the tracker published itself
and already journaled in the same transaction)."""

from __future__ import annotations

import logging

from parcours_contracts import (
    DeliveryAcked,
    DeliveryBounced,
    DispatchFailed,
    DispatchRequested,
    InvoiceDispatched,
    InvoiceReceived,
    IncidentResolutionRequested,
    InvoiceUnroutable,
    LinkClicked,
    RecipientActionRequested,
    ReminderDue,
)
from parcours_runtime.consumer import Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.actions import action_error
from parcours_tracker.store import incidents, journeys
from parcours_tracker.store.actions import record_action
from parcours_tracker.store.journeys import Tracking, record_event

log = logging.getLogger(__name__)


def build(ctx: ServiceContext) -> dict[type, Handler]:
    def tracking() -> Tracking:
        return ctx.extras["tracking"]

    async def on_invoice_received(event: InvoiceReceived, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.received(event), summary=event.invoice)

    async def on_invoice_unroutable(event: InvoiceUnroutable, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.unroutable(event),
                           customer_ref=event.customer_ref)

    async def on_dispatch_requested(event: DispatchRequested, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.dispatch_requested(event),
                           summary=event.invoice)

    async def on_invoice_dispatched(event: InvoiceDispatched, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.dispatched(event))

    async def on_dispatch_failed(event: DispatchFailed, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.dispatch_failed(event))

    async def on_delivery_acked(event: DeliveryAcked, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.acked(event))

    async def on_delivery_bounced(event: DeliveryBounced, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.bounced(event))

    async def on_link_clicked(event: LinkClicked, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.clicked(event))

    async def on_reminder_due(event: ReminderDue, uow: UnitOfWork) -> None:
        await record_event(uow, tracking(), event=event, entry=journal.reminder_due(event), summary=event.invoice)

    async def on_recipient_action(event: RecipientActionRequested, uow: UnitOfWork) -> None:
        """An answer from the portal: recorded like the API's, under the event's own id (a redelivery is a no-op)."""
        error = action_error(event.kind, reason=event.reason, promised_on=event.promised_on, amount=event.amount)
        if error is not None:
            log.warning("recipient action %s ignored: %s", event.event_id, error[1])
            return
        detail = event.model_dump(mode="json", include={"reason", "promised_on", "amount", "actor", "attachment"},
                                  exclude_none=True)
        await record_action(uow, tracking(), tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                            correlation_id=event.correlation_id, event_id=event.event_id, kind=event.kind,
                            occurred_at=event.occurred_at, detail=detail, source=event.source,
                            promised_on=event.promised_on, amount=event.amount)

    async def on_incident_resolution(event: IncidentResolutionRequested, uow: UnitOfWork) -> None:
        """A credit manager settled it from the console; already resolved or unknown: nothing to do."""
        invoice = await journeys.find_invoice(uow.session, tenant_id=event.tenant_id, invoice_id=event.invoice_id)
        if invoice is None:
            return
        await incidents.resolve(uow, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                                correlation_id=invoice.correlation_id, incident_id=event.incident_id,
                                resolution=f"{event.resolution} ({event.actor})", now=tracking().clock.now())

    return {
        RecipientActionRequested: on_recipient_action,
        IncidentResolutionRequested: on_incident_resolution,
        InvoiceReceived: on_invoice_received,
        InvoiceUnroutable: on_invoice_unroutable,
        DispatchRequested: on_dispatch_requested,
        InvoiceDispatched: on_invoice_dispatched,
        DispatchFailed: on_dispatch_failed,
        DeliveryAcked: on_delivery_acked,
        DeliveryBounced: on_delivery_bounced,
        LinkClicked: on_link_clicked,
        ReminderDue: on_reminder_due,
    }

"""One function per consumed event: turn it into a journal entry, re-project, publish what changed.

Events arrive in any order and possibly more than once; `journeys.record` ignores an event id
it already holds (including the LinkClicked and DeliveryAcked the tracker published itself
and already journaled in the same transaction)."""

from __future__ import annotations

from parcours_contracts import (
    DeliveryAcked,
    DeliveryBounced,
    DispatchFailed,
    DispatchRequested,
    InvoiceDispatched,
    InvoiceReceived,
    InvoiceUnroutable,
    LinkClicked,
    ReminderDue,
)
from parcours_runtime.consumer import Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.store.journeys import Tracking, record_event


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

    return {
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

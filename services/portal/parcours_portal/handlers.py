"""One function per consumed event type: the timeline row with its evidence, and what it changes on
the invoice (an Entry). The consumer hands a polled batch's events over together; the read model
records them in a few statements for all (store/readmodel.apply)."""

from __future__ import annotations

from collections.abc import Callable

from parcours_contracts import (
    CustomerChanged,
    DeliveryAcked,
    DeliveryBounced,
    DispatchFailed,
    DispatchRequested,
    IncidentOpened,
    IncidentResolved,
    InvoiceDispatched,
    InvoiceLifecycleChanged,
    InvoiceReceived,
    InvoiceUnroutable,
    LinkClicked,
    PaymentPromised,
    PaymentRecorded,
    ReminderDue,
)
from parcours_runtime.handlers import BatchHandler, Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork
from parcours_portal.store import readmodel
from parcours_portal.store.readmodel import Entry


def evidence(event, *fields: str) -> dict:
    return event.model_dump(mode="json", include=set(fields), exclude_none=True)


def on_received(event: InvoiceReceived) -> Entry:
    return Entry(event, "received", summary=event.invoice,
                 detail={"number": event.invoice.number, "total": str(event.invoice.total_incl_tax),
                         "currency": event.invoice.currency, "due_date": event.invoice.due_date.isoformat()})


def on_unroutable(event: InvoiceUnroutable) -> Entry:
    return Entry(event, "unroutable", evidence(event, "reason", "purpose"))


def on_dispatch_requested(event: DispatchRequested) -> Entry:
    recipients = [r.email for r in event.recipients]
    return Entry(event, "dispatch_requested", evidence(event, "channel", "purpose", "dispatch_id")
                 | {"recipients": recipients}, summary=event.invoice, recipients=recipients,
                 changes={"channel": event.channel} if event.purpose == "invoice" else {})


def on_dispatched(event: InvoiceDispatched) -> Entry:
    return Entry(event, "dispatched", evidence(event, "channel", "purpose", "dispatch_id")
                 | {"messages": [f"{m.recipient} {m.message_id}" for m in event.messages]},
                 changes={"channel": event.channel} if event.purpose == "invoice" else {})


def on_dispatch_failed(event: DispatchFailed) -> Entry:
    return Entry(event, "dispatch_failed", evidence(event, "channel", "purpose", "reason", "permanent"))


def on_acked(event: DeliveryAcked) -> Entry:
    return Entry(event, "acked", evidence(event, "channel", "ack_id", "status", "acked_at"))


def on_bounced(event: DeliveryBounced) -> Entry:
    return Entry(event, "bounced", evidence(event, "recipient", "permanent", "status", "diagnostic", "message_id"))


def on_clicked(event: LinkClicked) -> Entry:
    return Entry(event, "clicked", evidence(event, "recipient", "ip", "user_agent", "dispatch_id"))


def on_reminder_due(event: ReminderDue) -> Entry:
    reminder = event.reminder.model_dump(mode="json", exclude_none=True)
    detail = reminder | {"reason": event.reason}
    if event.penalties is not None:
        detail["penalties"] = str(event.penalties.indemnity + event.penalties.interest)
    return Entry(event, "reminder_due", detail, summary=event.invoice, reminded=True,
                 changes={"last_reminder": reminder | {"at": event.occurred_at.isoformat()}})


def on_lifecycle(event: InvoiceLifecycleChanged) -> Entry:
    return Entry(event, "lifecycle", evidence(event, "status", "code", "previous_status", "source", "reason"),
                 changes={"status": event.status, "code": int(event.code) if event.code is not None else None,
                          "status_at": event.status_at or event.occurred_at})


def on_payment(event: PaymentRecorded) -> Entry:
    return Entry(event, "payment", evidence(event, "payment_id", "amount", "currency", "paid_on", "reference",
                                            "status", "open_amount", "source"),
                 changes={"open_amount": event.open_amount})


def on_promise(event: PaymentPromised) -> Entry:
    return Entry(event, "promise", evidence(event, "promised_on", "amount", "source"),
                 changes={"promised_on": event.promised_on})


def on_incident_opened(event: IncidentOpened) -> Entry:
    return Entry(event, "incident_opened", evidence(event, "kind", "channel", "suggested_action", "evidence"),
                 incident="open")


def on_incident_resolved(event: IncidentResolved) -> Entry:
    return Entry(event, "incident_resolved", evidence(event, "resolution"), incident="resolve")


ENTRIES: dict[type, Callable[..., Entry]] = {
    InvoiceReceived: on_received,
    InvoiceUnroutable: on_unroutable,
    DispatchRequested: on_dispatch_requested,
    InvoiceDispatched: on_dispatched,
    DispatchFailed: on_dispatch_failed,
    DeliveryAcked: on_acked,
    DeliveryBounced: on_bounced,
    LinkClicked: on_clicked,
    ReminderDue: on_reminder_due,
    InvoiceLifecycleChanged: on_lifecycle,
    PaymentRecorded: on_payment,
    PaymentPromised: on_promise,
    IncidentOpened: on_incident_opened,
    IncidentResolved: on_incident_resolved,
}


def build(ctx: ServiceContext) -> dict[type, Handler]:
    async def record(events: list, uow: UnitOfWork) -> None:
        await readmodel.apply(uow.session, [ENTRIES[type(event)](event) for event in events])

    async def on_customer_changed(event: CustomerChanged, uow: UnitOfWork) -> None:
        await readmodel.upsert_customer(uow.session, event)

    # One handler object: a batch's events of all these types go together. The timeline's unique event
    # id drops a redelivery in the same transaction, so no inbox rows for these.
    timeline = BatchHandler(handle=record, deduplicates=True)
    return {event_type: timeline for event_type in ENTRIES} | {CustomerChanged: on_customer_changed}

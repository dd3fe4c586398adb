"""One function per consumed event: a timeline row with its evidence, and what it changes on the invoice."""

from __future__ import annotations

from sqlalchemy import update

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
from parcours_runtime.consumer import Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork
from parcours_portal.store import readmodel
from parcours_portal.store.models import Invoice


def evidence(event, *fields: str) -> dict:
    return event.model_dump(mode="json", include=set(fields), exclude_none=True)


def build(ctx: ServiceContext) -> dict[type, Handler]:
    async def on_received(event: InvoiceReceived, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="received", summary=event.invoice,
                               detail={"number": event.invoice.number, "total": str(event.invoice.total_incl_tax),
                                       "currency": event.invoice.currency,
                                       "due_date": event.invoice.due_date.isoformat()})

    async def on_unroutable(event: InvoiceUnroutable, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="unroutable", detail=evidence(event, "reason", "purpose"))

    async def on_dispatch_requested(event: DispatchRequested, uow: UnitOfWork) -> None:
        detail = evidence(event, "channel", "purpose", "dispatch_id") | {
            "recipients": [r.email for r in event.recipients]}
        changes = {"channel": event.channel} if event.purpose == "invoice" else {}
        await readmodel.record(uow.session, event, kind="dispatch_requested", detail=detail, summary=event.invoice,
                               **changes)
        await readmodel.add_recipients(uow.session, tenant_id=event.tenant_id,
                                       customer_ref=event.invoice.customer_ref,
                                       emails=[r.email for r in event.recipients])

    async def on_dispatched(event: InvoiceDispatched, uow: UnitOfWork) -> None:
        detail = evidence(event, "channel", "purpose", "dispatch_id") | {
            "messages": [f"{m.recipient} {m.message_id}" for m in event.messages]}
        changes = {"channel": event.channel} if event.purpose == "invoice" else {}
        await readmodel.record(uow.session, event, kind="dispatched", detail=detail, **changes)

    async def on_dispatch_failed(event: DispatchFailed, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="dispatch_failed",
                               detail=evidence(event, "channel", "purpose", "reason", "permanent"))

    async def on_acked(event: DeliveryAcked, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="acked",
                               detail=evidence(event, "channel", "ack_id", "status", "acked_at"))

    async def on_bounced(event: DeliveryBounced, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="bounced",
                               detail=evidence(event, "recipient", "permanent", "status", "diagnostic", "message_id"))

    async def on_clicked(event: LinkClicked, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="clicked",
                               detail=evidence(event, "recipient", "ip", "user_agent", "dispatch_id"))

    async def on_reminder_due(event: ReminderDue, uow: UnitOfWork) -> None:
        reminder = event.reminder.model_dump(mode="json", exclude_none=True)
        detail = reminder | {"reason": event.reason}
        if event.penalties is not None:
            detail["penalties"] = str(event.penalties.indemnity + event.penalties.interest)
        if await readmodel.record(uow.session, event, kind="reminder_due", detail=detail, summary=event.invoice,
                                  last_reminder=reminder | {"at": event.occurred_at.isoformat()}):
            await uow.session.execute(update(Invoice).where(
                Invoice.tenant_id == event.tenant_id, Invoice.invoice_id == event.invoice_id
            ).values(reminders=Invoice.reminders + 1))

    async def on_lifecycle(event: InvoiceLifecycleChanged, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="lifecycle",
                               detail=evidence(event, "status", "code", "previous_status", "source", "reason"),
                               status=event.status, code=int(event.code) if event.code is not None else None,
                               status_at=event.status_at or event.occurred_at)

    async def on_payment(event: PaymentRecorded, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="payment", open_amount=event.open_amount,
                               detail=evidence(event, "payment_id", "amount", "currency", "paid_on", "reference",
                                               "status", "open_amount", "source"))

    async def on_promise(event: PaymentPromised, uow: UnitOfWork) -> None:
        await readmodel.record(uow.session, event, kind="promise", promised_on=event.promised_on,
                               detail=evidence(event, "promised_on", "amount", "source"))

    async def on_incident_opened(event: IncidentOpened, uow: UnitOfWork) -> None:
        if await readmodel.record(uow.session, event, kind="incident_opened",
                                  detail=evidence(event, "kind", "channel", "suggested_action", "evidence")):
            await readmodel.open_incident(uow.session, event)

    async def on_incident_resolved(event: IncidentResolved, uow: UnitOfWork) -> None:
        if await readmodel.record(uow.session, event, kind="incident_resolved", detail=evidence(event, "resolution")):
            await readmodel.resolve_incident(uow.session, event)

    async def on_customer_changed(event: CustomerChanged, uow: UnitOfWork) -> None:
        await readmodel.upsert_customer(uow.session, event)

    return {
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
        CustomerChanged: on_customer_changed,
    }

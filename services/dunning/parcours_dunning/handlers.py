"""One function per consumed event type: store the fact it brings, then bring the invoice's
pending steps in line with everything known (pause, resume, defer, stop, recompute)."""

from __future__ import annotations

from parcours_contracts import (
    CustomerChanged, DeliveryAcked, DeliveryBounced, DispatchFailed, InvoiceDispatched, InvoiceLifecycleChanged,
    InvoiceReceived, LifecycleStatus, LinkClicked, PaymentPromised, PaymentRecorded,
)
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

from parcours_dunning.planning import plan_invoice, refresh
from parcours_dunning.store.invoices import add_dispatch_outcome, add_evidence, add_signal
from parcours_dunning.store.journal import open_task
from parcours_dunning.store.strategies import apply_customer_change


def build(ctx: ServiceContext) -> dict:
    def now():
        return ctx.extras["clock"].now()  # looked up each time: tests and the admin route may swap it

    async def settle(event, uow: UnitOfWork) -> None:
        await refresh(uow.session, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                      policy=ctx.extras["policy"], now=now())

    async def on_invoice_received(event: InvoiceReceived, uow: UnitOfWork) -> None:
        await plan_invoice(uow.session, event=event, policy=ctx.extras["policy"], now=now())

    async def on_delivery_acked(event: DeliveryAcked, uow: UnitOfWork) -> None:
        await add_evidence(uow.session, event_id=event.event_id, tenant_id=event.tenant_id,
                           invoice_id=event.invoice_id, kind=event.type, observed_at=event.acked_at,
                           channel=event.channel, reference=event.ack_id)
        await settle(event, uow)

    async def on_link_clicked(event: LinkClicked, uow: UnitOfWork) -> None:
        await add_evidence(uow.session, event_id=event.event_id, tenant_id=event.tenant_id,
                           invoice_id=event.invoice_id, kind=event.type, observed_at=event.occurred_at, channel=None,
                           reference=str(event.dispatch_id))
        await settle(event, uow)

    async def on_invoice_dispatched(event: InvoiceDispatched, uow: UnitOfWork) -> None:
        await add_dispatch_outcome(
            uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
            dispatch_id=event.dispatch_id, channel=event.channel, purpose=event.purpose,
            reminder_step=event.reminder.step if event.reminder else None, outcome="dispatched",
            occurred_at=event.occurred_at)
        await settle(event, uow)

    async def on_dispatch_failed(event: DispatchFailed, uow: UnitOfWork) -> None:
        await add_dispatch_outcome(
            uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
            dispatch_id=event.dispatch_id, channel=event.channel, purpose=event.purpose,
            reminder_step=event.reminder.step if event.reminder else None, outcome="failed",
            permanent=event.permanent, reason=event.reason, occurred_at=event.occurred_at)
        await settle(event, uow)

    async def on_delivery_bounced(event: DeliveryBounced, uow: UnitOfWork) -> None:
        await add_dispatch_outcome(
            uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
            dispatch_id=event.dispatch_id, channel=event.channel, purpose=event.purpose, reminder_step=None,
            outcome="bounced", permanent=event.permanent,
            reason=f"{event.recipient} {event.status or ''} {event.diagnostic}".strip(), occurred_at=event.occurred_at)
        await settle(event, uow)

    async def on_lifecycle_changed(event: InvoiceLifecycleChanged, uow: UnitOfWork) -> None:
        code = int(event.code) if event.code is not None else None
        await add_signal(uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                         kind="lifecycle", at=event.occurred_at, code=code, status=event.status,
                         detail=event.reason)
        if code == LifecycleStatus.REFUSEE:
            await open_task(uow.session, tenant_id=event.tenant_id, invoice_id=event.invoice_id, kind="review",
                            due=ctx.extras["policy"].calendar.local_date(now()), source=f"lifecycle:{event.event_id}",
                            reason=f"the customer refused the invoice{': ' + event.reason if event.reason else ''}",
                            at=now())
        await settle(event, uow)

    async def on_payment_recorded(event: PaymentRecorded, uow: UnitOfWork) -> None:
        await add_signal(uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                         kind="payment", at=event.occurred_at, open_amount=str(event.open_amount),
                         fully_paid=event.fully_paid, detail=f"{event.amount} {event.currency} on {event.paid_on}")
        await settle(event, uow)

    async def on_payment_promised(event: PaymentPromised, uow: UnitOfWork) -> None:
        await add_signal(uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                         kind="promise", at=event.occurred_at, promised_on=event.promised_on.isoformat(),
                         detail=event.source)
        await settle(event, uow)

    async def on_customer_changed(event: CustomerChanged, uow: UnitOfWork) -> None:
        await apply_customer_change(uow.session, event=event)

    return {
        InvoiceReceived: on_invoice_received,
        DeliveryAcked: on_delivery_acked,
        LinkClicked: on_link_clicked,
        InvoiceDispatched: on_invoice_dispatched,
        DispatchFailed: on_dispatch_failed,
        DeliveryBounced: on_delivery_bounced,
        InvoiceLifecycleChanged: on_lifecycle_changed,
        PaymentRecorded: on_payment_recorded,
        PaymentPromised: on_payment_promised,
        CustomerChanged: on_customer_changed,
    }

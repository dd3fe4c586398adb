"""One function per consumed event type: remember the invoice and plan its reminders,
collect receipt evidence and dispatch outcomes."""

from __future__ import annotations

from parcours_contracts import DeliveryAcked, DispatchFailed, InvoiceDispatched, InvoiceReceived, LinkClicked
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

from parcours_dunning.domain.strategy import DEFAULT_STRATEGY, InvoiceFacts, plan
from parcours_dunning.store.invoices import add_dispatch_outcome, add_evidence, add_invoice
from parcours_dunning.store.schedule import add_plan


def build(ctx: ServiceContext) -> dict:
    reminder_hour_utc = ctx.settings.reminder_hour_utc

    async def on_invoice_received(event: InvoiceReceived, uow: UnitOfWork) -> None:
        strategy = DEFAULT_STRATEGY  # versioned strategies per customer group come later
        if not await add_invoice(uow.session, event=event, strategy=strategy.name):
            return
        facts = InvoiceFacts(issue_date=event.invoice.issue_date, due_date=event.invoice.due_date)
        await add_plan(uow.session, tenant_id=event.tenant_id, invoice_id=event.invoice_id, strategy=strategy.name,
                       planned=plan(facts, strategy, reminder_hour_utc=reminder_hour_utc))

    return {
        InvoiceReceived: on_invoice_received,
        DeliveryAcked: on_delivery_acked,
        LinkClicked: on_link_clicked,
        InvoiceDispatched: on_invoice_dispatched,
        DispatchFailed: on_dispatch_failed,
    }


async def on_delivery_acked(event: DeliveryAcked, uow: UnitOfWork) -> None:
    await add_evidence(uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                       kind=event.type, observed_at=event.acked_at, channel=event.channel, reference=event.ack_id)


async def on_link_clicked(event: LinkClicked, uow: UnitOfWork) -> None:
    await add_evidence(uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                       kind=event.type, observed_at=event.occurred_at, channel=None, reference=str(event.dispatch_id))


async def on_invoice_dispatched(event: InvoiceDispatched, uow: UnitOfWork) -> None:
    await add_dispatch_outcome(
        uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
        dispatch_id=event.dispatch_id, channel=event.channel, purpose=event.purpose,
        reminder_step=event.reminder.step if event.reminder else None, outcome="dispatched",
        occurred_at=event.occurred_at)


async def on_dispatch_failed(event: DispatchFailed, uow: UnitOfWork) -> None:
    await add_dispatch_outcome(
        uow.session, event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
        dispatch_id=event.dispatch_id, channel=event.channel, purpose=event.purpose,
        reminder_step=event.reminder.step if event.reminder else None, outcome="failed",
        permanent=event.permanent, reason=event.reason, occurred_at=event.occurred_at)

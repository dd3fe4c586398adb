"""One function per consumed event type: store the facts they bring, then bring their invoices'
pending steps in line with everything known (pause, resume, defer, stop, recompute).

Received invoices and the facts-bearing events share one BatchHandler: the facts standing together in
a polled batch are stored in one statement per table, the new invoices planned from them, and the
other invoices re-planned once together (locked in key order, loaded in a few statements for all),
which is what one event at a time cost per event."""

from __future__ import annotations

from collections.abc import Callable

from parcours_contracts import (
    CustomerChanged, DeliveryAcked, DeliveryBounced, DispatchFailed, InvoiceDispatched, InvoiceLifecycleChanged,
    InvoiceReceived, LifecycleStatus, LinkClicked, PaymentPromised, PaymentRecorded,
)
from parcours_runtime.handlers import BatchHandler, recorded_once
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

from parcours_dunning.planning import plan_invoices, refresh_many
from parcours_dunning.store.base import Base
from parcours_dunning.store.invoices import DispatchOutcome, Evidence, InvoiceSignal, add_facts, signal
from parcours_dunning.store.journal import open_task
from parcours_dunning.store.strategies import apply_customer_change


def _evidence(event: DeliveryAcked | LinkClicked) -> dict:
    if isinstance(event, DeliveryAcked):
        return dict(event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id, kind=event.type,
                    observed_at=event.acked_at, channel=event.channel, reference=event.ack_id)
    return dict(event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id, kind=event.type,
                observed_at=event.occurred_at, channel=None, reference=str(event.dispatch_id))


def _outcome(event: InvoiceDispatched | DispatchFailed | DeliveryBounced) -> dict:
    row = dict(event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
               dispatch_id=event.dispatch_id, channel=event.channel, purpose=event.purpose, reminder_step=None,
               outcome="dispatched", permanent=None, reason=None, occurred_at=event.occurred_at)
    if isinstance(event, DeliveryBounced):
        return row | dict(outcome="bounced", permanent=event.permanent,
                          reason=f"{event.recipient} {event.status or ''} {event.diagnostic}".strip())
    row["reminder_step"] = event.reminder.step if event.reminder else None
    if isinstance(event, DispatchFailed):
        return row | dict(outcome="failed", permanent=event.permanent, reason=event.reason)
    return row


def _lifecycle(event: InvoiceLifecycleChanged) -> dict:
    return signal(event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id, kind="lifecycle",
                  at=event.occurred_at, code=int(event.code) if event.code is not None else None, status=event.status,
                  detail=event.reason)


def _payment(event: PaymentRecorded) -> dict:
    return signal(event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id, kind="payment",
                  at=event.occurred_at, open_amount=str(event.open_amount), fully_paid=event.fully_paid,
                  detail=f"{event.amount} {event.currency} on {event.paid_on}")


def _promise(event: PaymentPromised) -> dict:
    return signal(event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id, kind="promise",
                  at=event.occurred_at, promised_on=event.promised_on.isoformat(), detail=event.source)


# The table each fact-bearing event is stored in, and its row there.
FACTS: dict[type, tuple[type[Base], Callable[..., dict]]] = {
    DeliveryAcked: (Evidence, _evidence),
    LinkClicked: (Evidence, _evidence),
    InvoiceDispatched: (DispatchOutcome, _outcome),
    DispatchFailed: (DispatchOutcome, _outcome),
    DeliveryBounced: (DispatchOutcome, _outcome),
    InvoiceLifecycleChanged: (InvoiceSignal, _lifecycle),
    PaymentRecorded: (InvoiceSignal, _payment),
    PaymentPromised: (InvoiceSignal, _promise),
}


def build(ctx: ServiceContext) -> dict:
    def now():
        return ctx.extras["clock"].now()  # looked up each time: tests and the admin route may swap it

    async def open_review_tasks(events: list[InvoiceLifecycleChanged], uow: UnitOfWork) -> None:
        for event in events:
            if event.code is not None and int(event.code) == LifecycleStatus.REFUSEE:
                await open_task(uow.session, tenant_id=event.tenant_id, invoice_id=event.invoice_id, kind="review",
                                due=ctx.extras["policy"].calendar.local_date(now()),
                                source=f"lifecycle:{event.event_id}", at=now(),
                                reason=f"the customer refused the invoice{': ' + event.reason if event.reason else ''}")

    async def on_invoice_events(events: list, uow: UnitOfWork) -> None:
        """A poll's received invoices and facts together: each fact stored in its table (then the review tasks
        refusals call for), the new invoices planned from every fact stored so far, and the other invoices the
        facts concern re-planned once. An invoice's first reception and each fact's event id are unique, so a
        redelivery changes nothing in the same transaction: no inbox rows for these."""
        rows: dict[type[Base], list[dict]] = {}
        for event in events:
            if type(event) in FACTS:
                table, row_of = FACTS[type(event)]
                rows.setdefault(table, []).append(row_of(event))
        fresh: set = set()
        for table, table_rows in rows.items():
            fresh |= await add_facts(uow.session, table, table_rows)
        facts = recorded_once(events, fresh, lambda event: event.event_id)
        await open_review_tasks([event for event in facts if isinstance(event, InvoiceLifecycleChanged)], uow)
        received = [event for event in events if isinstance(event, InvoiceReceived)]
        planned = await plan_invoices(uow.session, events=received, policy=ctx.extras["policy"], now=now()) \
            if received else set()
        keys = [key for event in facts if (key := (event.tenant_id, event.invoice_id)) not in planned]
        if keys:
            await refresh_many(uow.session, keys=keys, policy=ctx.extras["policy"], now=now())

    async def on_customer_changed(event: CustomerChanged, uow: UnitOfWork) -> None:
        await apply_customer_change(uow.session, event=event)

    # One object: a poll's received invoices and facts of every kind go together.
    invoice_events = BatchHandler(handle=on_invoice_events, deduplicates=True)
    return {CustomerChanged: on_customer_changed} | dict.fromkeys((InvoiceReceived, *FACTS), invoice_events)

"""The consumed events: each fact becomes a journal entry, its invoice is re-projected, what changed
is published. The facts of a polled batch are recorded together, set-based (`store.recording`).

Events arrive in any order and possibly more than once; recording ignores an event id the journal
already holds (including the LinkClicked and DeliveryAcked the tracker published itself and
already journaled in the same transaction)."""

from __future__ import annotations

import logging
from collections.abc import Callable

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
from parcours_contracts.events import InvoiceEvent
from parcours_runtime.handlers import BatchHandler, Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.actions import action_error
from parcours_tracker.domain.following import Fact
from parcours_tracker.store import incidents, journeys
from parcours_tracker.store.actions import record_action
from parcours_tracker.store.journeys import Tracking, fact_of, record_facts

log = logging.getLogger(__name__)


# What each event records: its journal entry, and what it says about the invoice.
FACTS: dict[type, Callable[[InvoiceEvent], Fact]] = {
    InvoiceReceived: lambda e: fact_of(e, journal.received(e), summary=e.invoice),
    InvoiceUnroutable: lambda e: fact_of(e, journal.unroutable(e), customer_ref=e.customer_ref),
    DispatchRequested: lambda e: fact_of(e, journal.dispatch_requested(e), summary=e.invoice),
    InvoiceDispatched: lambda e: fact_of(e, journal.dispatched(e)),
    DispatchFailed: lambda e: fact_of(e, journal.dispatch_failed(e)),
    DeliveryAcked: lambda e: fact_of(e, journal.acked(e)),
    DeliveryBounced: lambda e: fact_of(e, journal.bounced(e)),
    LinkClicked: lambda e: fact_of(e, journal.clicked(e)),
    ReminderDue: lambda e: fact_of(e, journal.reminder_due(e), summary=e.invoice),
}


def build(ctx: ServiceContext) -> dict[type, Handler]:
    def tracking() -> Tracking:
        return ctx.extras["tracking"]

    async def on_facts(events: list[InvoiceEvent], uow: UnitOfWork) -> None:
        """The facts of a polled batch, whatever their types, recorded together (one instance for all
        the types, so that a run of them in a batch is one call)."""
        await record_facts(uow, tracking(), [FACTS[type(event)](event) for event in events])

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

    # The journal's unique event id drops a redelivered fact in the same transaction: no inbox row needed.
    facts = BatchHandler(handle=on_facts, deduplicates=True)
    return {
        RecipientActionRequested: on_recipient_action,
        IncidentResolutionRequested: on_incident_resolution,
        **{event_type: facts for event_type in FACTS},
    }

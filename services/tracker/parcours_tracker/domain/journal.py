"""What each consumed event means for an invoice's journey: one journal entry (kind + detail)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

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
from parcours_contracts.events import InvoiceEvent

RECEIVED = "received"
UNROUTABLE = "unroutable"
DISPATCH_REQUESTED = "dispatch_requested"
DISPATCHED = "dispatched"
DISPATCH_FAILED = "dispatch_failed"
ACKED = "acked"
CLICKED = "clicked"
REMINDER_DUE = "reminder_due"
REMINDED = "reminded"
REMINDER_FAILED = "reminder_failed"
BOUNCED = "bounced"
OPENED = "opened"  # a GET of the tracked link that may be a person's (not yet evidence)
OPENED_BY_MACHINE = "opened_by_machine"  # a GET that looks like a mail scanner's
PAYMENT = "payment"
# Recipient actions (API, later the portal): the kind is the action.
RECIPIENT_ACTIONS = ("taken_over", "approved", "partially_approved", "disputed", "suspended", "completed", "refused",
                     "promise_to_pay")
# The tracker's own verdicts, written next to the facts: never inputs of the projection.
ANOMALY = "anomaly"
INCIDENT_OPENED = "incident_opened"
INCIDENT_RESOLVED = "incident_resolved"
VERDICTS = (ANOMALY, INCIDENT_OPENED, INCIDENT_RESOLVED)

KINDS = (RECEIVED, UNROUTABLE, DISPATCH_REQUESTED, DISPATCHED, DISPATCH_FAILED, ACKED, BOUNCED, OPENED,
         OPENED_BY_MACHINE, CLICKED, *RECIPIENT_ACTIONS, PAYMENT, REMINDER_DUE, REMINDED, REMINDER_FAILED,
         *VERDICTS)


@dataclass(frozen=True)
class Entry:
    """One immutable fact of an invoice's journey."""

    event_id: UUID
    kind: str
    occurred_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def purpose(self) -> str:
        """'invoice' or 'reminder': reminders never move the invoice's own delivery status."""
        return self.detail.get("purpose", "invoice")


def _entry(event: InvoiceEvent, kind: str, *fields: str, **extra: Any) -> Entry:
    """An entry whose detail is the named fields of the event (as JSON) plus `extra`."""
    detail = event.model_dump(mode="json", include=set(fields))
    detail.update(extra)
    return Entry(event_id=event.event_id, kind=kind, occurred_at=event.occurred_at, detail=detail)


def received(event: InvoiceReceived) -> Entry:
    invoice = event.invoice
    return _entry(event, RECEIVED, number=invoice.number, customer_ref=invoice.customer_ref,
                  currency=invoice.currency, total_incl_tax=str(invoice.total_incl_tax),
                  due_date=invoice.due_date.isoformat())


def unroutable(event: InvoiceUnroutable) -> Entry:
    return _entry(event, UNROUTABLE, "customer_ref", "reason", "purpose")


def dispatch_requested(event: DispatchRequested) -> Entry:
    return _entry(event, DISPATCH_REQUESTED, "dispatch_id", "channel", "fallback_channels", "purpose", "reminder",
                  recipients=[recipient.email for recipient in event.recipients])


def dispatched(event: InvoiceDispatched) -> Entry:
    kind = REMINDED if event.purpose == "reminder" else DISPATCHED
    return _entry(event, kind, "dispatch_id", "channel", "purpose", "reminder", "messages")


def dispatch_failed(event: DispatchFailed) -> Entry:
    kind = REMINDER_FAILED if event.purpose == "reminder" else DISPATCH_FAILED
    return _entry(event, kind, "dispatch_id", "channel", "purpose", "reminder", "reason", "permanent",
                  "fallback_channels")


def acked(event: DeliveryAcked) -> Entry:
    return _entry(event, ACKED, "channel", "ack_id", "status", "acked_at")


def clicked(event: LinkClicked) -> Entry:
    return _entry(event, CLICKED, "dispatch_id", "recipient", "ip", "user_agent")


def bounced(event: DeliveryBounced) -> Entry:
    return _entry(event, BOUNCED, "dispatch_id", "channel", "purpose", "recipient", "message_id", "permanent",
                  "status", "diagnostic")


def reminder_due(event: ReminderDue) -> Entry:
    return _entry(event, REMINDER_DUE, "reminder", "reason", purpose="reminder")

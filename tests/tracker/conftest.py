"""Fixtures for the tracker tests: the service on the real broker and DB, builders of one invoice's
events (publish them with the root `publish` fixture, read topics with the root `read_topic`)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from parcours_contracts import (
    DeliveryAcked,
    DispatchFailed,
    DispatchRequested,
    InvoiceDispatched,
    InvoiceReceived,
    InvoiceSummary,
    InvoiceUnroutable,
    LinkClicked,
    Recipient,
    ReminderDue,
    ReminderInfo,
    SentMessage,
    topic_for,
)


class InvoiceFlow:
    """The events of one invoice's journey, stamped `minute` minutes after a fixed start."""

    def __init__(self, tenant_id: str = "acme", number: str = "F-2026-001", seller_name: str = "ACME SAS",
                 customer_ref: str = "CUST-1"):
        self.tenant_id = tenant_id
        self.invoice_id = uuid.uuid4()
        self.correlation_id = f"corr-{self.invoice_id}"
        self.dispatch_id = uuid.uuid4()
        self.start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
        self.summary = InvoiceSummary(
            number=number, issue_date=date(2026, 11, 2), due_date=date(2026, 12, 2), currency="EUR",
            total_excl_tax=Decimal("1000.00"), total_tax=Decimal("200.00"), total_incl_tax=Decimal("1200.00"),
            seller_name=seller_name, buyer_name="Globex SARL", customer_ref=customer_ref)

    def _envelope(self, minute: float) -> dict:
        return dict(tenant_id=self.tenant_id, invoice_id=self.invoice_id, correlation_id=self.correlation_id,
                    occurred_at=self.start + timedelta(minutes=minute))

    def received(self, minute: float = 0) -> InvoiceReceived:
        return InvoiceReceived(**self._envelope(minute), invoice=self.summary)

    def unroutable(self, minute: float = 1) -> InvoiceUnroutable:
        return InvoiceUnroutable(**self._envelope(minute), customer_ref=self.summary.customer_ref,
                                 reason="customer unknown to the directory")

    def dispatch_requested(self, minute: float = 1, dispatch_id: uuid.UUID | None = None,
                           channel: str = "email_link", purpose: str = "invoice") -> DispatchRequested:
        reminder = ReminderInfo(strategy="default", step="first", sequence=1) if purpose == "reminder" else None
        return DispatchRequested(**self._envelope(minute), dispatch_id=dispatch_id or self.dispatch_id,
                                 channel=channel, recipients=[Recipient(email="ap@globex.example")],
                                 purpose=purpose, reminder=reminder, invoice=self.summary)

    def dispatched(self, minute: float = 2, dispatch_id: uuid.UUID | None = None,
                   purpose: str = "invoice") -> InvoiceDispatched:
        reminder = ReminderInfo(strategy="default", step="first", sequence=1) if purpose == "reminder" else None
        return InvoiceDispatched(**self._envelope(minute), dispatch_id=dispatch_id or self.dispatch_id,
                                 channel="email_link", purpose=purpose, reminder=reminder,
                                 messages=[SentMessage(recipient="ap@globex.example", message_id="<m1@parcours>")])

    def failed(self, minute: float = 2, dispatch_id: uuid.UUID | None = None, purpose: str = "invoice",
               channel: str = "email_link") -> DispatchFailed:
        reminder = ReminderInfo(strategy="default", step="first", sequence=1) if purpose == "reminder" else None
        return DispatchFailed(**self._envelope(minute), dispatch_id=dispatch_id or self.dispatch_id,
                              channel=channel, purpose=purpose, reminder=reminder, reason="mailbox unavailable")

    def acked(self, minute: float = 3, ack_id: str = "ACK-1") -> DeliveryAcked:
        envelope = self._envelope(minute)
        return DeliveryAcked(**envelope, channel="edi", ack_id=ack_id, acked_at=envelope["occurred_at"])

    def clicked(self, minute: float = 4) -> LinkClicked:
        return LinkClicked(**self._envelope(minute), dispatch_id=self.dispatch_id, recipient="ap@globex.example",
                           ip="203.0.113.7", user_agent="Mozilla/5.0")

    def reminder_due(self, minute: float = 60) -> ReminderDue:
        return ReminderDue(**self._envelope(minute), reminder=ReminderInfo(strategy="default", step="first", sequence=1),
                           reason="due date passed", invoice=self.summary)


@pytest.fixture
def flow():
    """Factory of InvoiceFlow: `flow(tenant_id=..., number=...)`."""
    return InvoiceFlow


@pytest.fixture
async def tracker(run_service):
    return await run_service("tracker")


@pytest.fixture
async def client(tracker):
    async with httpx.AsyncClient(base_url=tracker.url, timeout=10) as http:
        yield http


@pytest.fixture
def consumed(tracker):
    """Whether the tracker's consumer has handled `events` (it counts what it handled per topic and type; the
    facts leave no inbox row: the journal drops their redeliveries)."""

    async def check(*events) -> bool:
        wanted = Counter((topic_for(event), event.type, type(event)) for event in events)
        return all(tracker.consumer_of(event_type).handled_by[(topic, name)] >= n
                   for (topic, name, event_type), n in wanted.items())

    return check

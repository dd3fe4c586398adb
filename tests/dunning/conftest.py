"""Dunning test helpers: a dunning service on a settable clock, events fed to the real
broker as neighbouring services would publish them, and the reminders it published."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timezone
from decimal import Decimal

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from parcours_contracts import (
    CustomerChanged, DeliveryAcked, DeliveryBounced, DispatchFailed, InvoiceDispatched, InvoiceLifecycleChanged,
    InvoiceReceived, InvoiceSummary, LifecycleStatus, LinkClicked, PaymentPromised, PaymentRecorded, ReminderDue,
    SentMessage, parse_event, topics,
)
from parcours_runtime.outbox import outbox_backlog

UTC = timezone.utc




def at_hour(day: date, hour: int = 8) -> datetime:
    return datetime.combine(day, time(hour, tzinfo=UTC))


def paris_8(day: date) -> datetime:
    """The sending window's opening (08:00 Europe/Paris) on `day`, in UTC."""
    from zoneinfo import ZoneInfo
    return datetime.combine(day, time(8), tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)


def invoice_received(*, tenant_id: str = "acme", issue: date, due: date, number: str = "INV-1",
                     invoice_id: uuid.UUID | None = None, customer_ref: str = "ALPHA",
                     amount: str = "120.00") -> InvoiceReceived:
    invoice_id = invoice_id or uuid.uuid4()
    summary = InvoiceSummary(number=number, issue_date=issue, due_date=due, currency="EUR",
                             total_excl_tax=Decimal("100.00"), total_tax=Decimal("20.00"),
                             total_incl_tax=Decimal(amount), seller_name="Seller SA", buyer_name="Alpha SAS",
                             customer_ref=customer_ref)
    return InvoiceReceived(tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=f"corr-{invoice_id}",
                           invoice=summary)


def link_clicked(*, tenant_id: str, invoice_id: uuid.UUID) -> LinkClicked:
    return LinkClicked(tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=f"corr-{invoice_id}",
                       dispatch_id=uuid.uuid4(), recipient="ap@alpha.example")


def delivery_acked(*, tenant_id: str, invoice_id: uuid.UUID, acked_at: datetime) -> DeliveryAcked:
    return DeliveryAcked(tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=f"corr-{invoice_id}",
                         channel="partner_x", ack_id=f"ack-{invoice_id}", acked_at=acked_at)


def invoice_dispatched(cause: InvoiceReceived, at: datetime | None = None, purpose: str = "invoice") -> InvoiceDispatched:
    return InvoiceDispatched.following(cause, dispatch_id=uuid.uuid4(), channel="email_link", purpose=purpose,
                                       messages=[SentMessage(recipient="ap@alpha.example", message_id="<m1@x>")],
                                       **({"occurred_at": at} if at else {}))


def dispatch_failed(cause: InvoiceReceived, at: datetime) -> DispatchFailed:
    return DispatchFailed.following(cause, dispatch_id=uuid.uuid4(), channel="email_link", reason="550 no such user",
                                    fallback_channels=["letter"], occurred_at=at)


def delivery_bounced(cause: InvoiceReceived, at: datetime, permanent: bool = True) -> DeliveryBounced:
    return DeliveryBounced.following(cause, dispatch_id=uuid.uuid4(), channel="email_link", recipient="ap@alpha.example",
                                     permanent=permanent, status="5.1.1", diagnostic="mailbox unknown", occurred_at=at)


def lifecycle(cause: InvoiceReceived, code: LifecycleStatus, at: datetime) -> InvoiceLifecycleChanged:
    return InvoiceLifecycleChanged.following(cause, status=code.name, code=code, source="portal", occurred_at=at,
                                             reason="test")


def payment(cause: InvoiceReceived, amount: str, open_amount: str, at: datetime) -> PaymentRecorded:
    return PaymentRecorded.following(cause, payment_id=str(uuid.uuid4()), amount=Decimal(amount), currency="EUR",
                                     paid_on=at.date(), open_amount=Decimal(open_amount),
                                     fully_paid=Decimal(open_amount) <= 0, source="api", occurred_at=at)


def promise(cause: InvoiceReceived, promised_on: date, at: datetime) -> PaymentPromised:
    return PaymentPromised.following(cause, promised_on=promised_on, source="portal", occurred_at=at)


def customer_changed(*, tenant_id: str = "acme", ref: str, group: str | None, at: datetime | None = None,
                     deleted: bool = False) -> CustomerChanged:
    return CustomerChanged(tenant_id=tenant_id, correlation_id=f"customer-{ref}", customer_ref=ref, group=group,
                           deleted=deleted, **({"occurred_at": at} if at else {}))


@pytest.fixture
def build(eventually):
    """Event builders (conftest modules are not importable in importlib mode)."""
    waiting = eventually
    class Builders:
        invoice_received = staticmethod(invoice_received)
        link_clicked = staticmethod(link_clicked)
        delivery_acked = staticmethod(delivery_acked)
        invoice_dispatched = staticmethod(invoice_dispatched)
        dispatch_failed = staticmethod(dispatch_failed)
        delivery_bounced = staticmethod(delivery_bounced)
        lifecycle = staticmethod(lifecycle)
        payment = staticmethod(payment)
        promise = staticmethod(promise)
        customer_changed = staticmethod(customer_changed)
        paris_8 = staticmethod(paris_8)
        at_hour = staticmethod(at_hour)
        eventually = staticmethod(waiting)
    return Builders



@pytest.fixture
def published_reminders(kafka, eventually):
    """Every ReminderDue on `reminder.due`, once the service's outbox has been relayed."""

    async def read(host) -> list[ReminderDue]:
        async def outbox_empty():
            async with host.ctx.sessions() as session:
                return await outbox_backlog(session) == 0
        await eventually(outbox_empty)
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            await consumer.topics()  # loads the cluster metadata
            partitions = [TopicPartition(topics.REMINDER_DUE, p)
                          for p in sorted(consumer.partitions_for_topic(topics.REMINDER_DUE) or ())]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            found: list[ReminderDue] = []
            for tp in partitions:
                while await consumer.position(tp) < ends[tp]:
                    for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                        found.append(parse_event(record.value))
            return found
        finally:
            await consumer.stop()

    return read


@pytest.fixture
async def client_for(tenant_key):
    """Factory: an HTTP client on `host`, authenticated as `tenant_id` (or with `headers`)."""
    clients: list[httpx.AsyncClient] = []

    async def make(host, tenant_id: str | None = "acme", headers: dict | None = None) -> httpx.AsyncClient:
        auth = {}
        if tenant_id is not None:
            auth = {"Authorization": f"Bearer {await tenant_key(host, tenant_id=tenant_id)}"}
        client = httpx.AsyncClient(base_url=host.url, headers={**auth, **(headers or {})}, timeout=10)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def plan_of(client: httpx.AsyncClient, invoice_id) -> dict | None:
    response = await client.get(f"/v1/invoices/{invoice_id}/reminders")
    return response.json() if response.status_code == 200 else None


@pytest.fixture
def wait_for_plan(eventually):
    """The invoice's reminder plan, once dunning has consumed its InvoiceReceived."""

    async def wait(client: httpx.AsyncClient, invoice_id, predicate=lambda plan: True) -> dict:
        async def ready():
            plan = await plan_of(client, invoice_id)
            return plan if plan is not None and predicate(plan) else None
        return await eventually(ready)

    return wait

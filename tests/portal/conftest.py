"""Fixtures for the portal tests: the service on the real broker and DB, console users made
through its admin API, signed-in HTTP clients, and the events of one invoice's journey."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from parcours_contracts import (
    DispatchRequested,
    IncidentOpened,
    InvoiceDispatched,
    InvoiceLifecycleChanged,
    InvoiceReceived,
    InvoiceSummary,
    LinkClicked,
    Recipient,
    ReminderDue,
    ReminderInfo,
    SentMessage,
)

ADMIN = {"Authorization": "Bearer dev-admin-token"}
PASSWORD = "correct horse battery"


class Journey:
    """The events of one invoice, stamped `minute` minutes after a start two days ago."""

    def __init__(self, tenant_id: str = "acme", number: str = "F-001", customer_ref: str = "CUST-1",
                 due: date | None = None):
        self.tenant_id, self.invoice_id = tenant_id, uuid.uuid4()
        self.correlation_id, self.dispatch_id = f"corr-{self.invoice_id}", uuid.uuid4()
        self.start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
        self.recipient = f"ap@{customer_ref.lower()}.example"
        self.summary = InvoiceSummary(
            number=number, issue_date=date(2026, 11, 2), due_date=due or date.today() - timedelta(days=45),
            currency="EUR", total_excl_tax=Decimal("1000.00"), total_tax=Decimal("200.00"),
            total_incl_tax=Decimal("1200.00"), seller_name="ACME SAS", buyer_name=f"Buyer of {customer_ref}",
            customer_ref=customer_ref)

    def _env(self, minute: float) -> dict:
        return dict(tenant_id=self.tenant_id, invoice_id=self.invoice_id, correlation_id=self.correlation_id,
                    occurred_at=self.start + timedelta(minutes=minute))

    def received(self):
        return InvoiceReceived(**self._env(0), invoice=self.summary)

    def requested(self):
        return DispatchRequested(**self._env(1), dispatch_id=self.dispatch_id, channel="email_link",
                                 recipients=[Recipient(email=self.recipient)], invoice=self.summary)

    def dispatched(self):
        return InvoiceDispatched(**self._env(2), dispatch_id=self.dispatch_id, channel="email_link",
                                 messages=[SentMessage(recipient=self.recipient, message_id="<m-1@parcours.test>")])

    def clicked(self):
        return LinkClicked(**self._env(30), dispatch_id=self.dispatch_id, recipient=self.recipient,
                           ip="203.0.113.7", user_agent="Mozilla/5.0 (evidence)")

    def lifecycle(self, status: str, code: int | None, minute: float = 31):
        return InvoiceLifecycleChanged(**self._env(minute), status=status, code=code, source="tracker")

    def reminder(self):
        return ReminderDue(**self._env(600), reminder=ReminderInfo(strategy="fr-b2b", step="first-reminder",
                                                                   sequence=1),
                           reason="due date passed", invoice=self.summary)

    def incident(self):
        return IncidentOpened(**self._env(700), incident_id=uuid.uuid4(), kind="not_received", channel="email_link",
                              evidence={"deadline": "2026-11-05T00:00:00Z"}, suggested_action="call")

    def delivered(self):
        return [self.received(), self.requested(), self.dispatched(), self.lifecycle("sent", 201, 3)]


@pytest.fixture
def journey():
    return Journey


@pytest.fixture
async def portal(run_service):
    return await run_service("portal")


@pytest.fixture
async def make_user(portal):
    async def make(email: str, *, role: str = "credit_manager", tenant_id: str = "acme") -> dict:
        async with httpx.AsyncClient(base_url=portal.url) as http:
            response = await http.put("/v1/admin/users", headers=ADMIN, json={
                "tenant_id": tenant_id, "email": email, "name": email.split("@")[0], "role": role,
                "password": PASSWORD})
        assert response.status_code in (200, 201), response.text
        return response.json()

    return make


@pytest.fixture
async def signed_in(portal, make_user):
    """Factory: an httpx client signed in to the console as a new user of `tenant_id` with `role`."""
    clients: list[httpx.AsyncClient] = []

    async def sign_in(email: str, *, role: str = "credit_manager", tenant_id: str = "acme") -> httpx.AsyncClient:
        await make_user(email, role=role, tenant_id=tenant_id)
        http = httpx.AsyncClient(base_url=portal.url, headers={"Accept": "text/html"}, timeout=10)
        clients.append(http)
        response = await http.post("/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 303, response.text
        return http

    yield sign_in
    for http in clients:
        await http.aclose()


@pytest.fixture
def page_shows(eventually):
    """`await page_shows(client, path, text)`: the page eventually contains `text` (the read model catches up)."""

    async def wait(http: httpx.AsyncClient, path: str, *texts: str):
        async def shown():
            response = await http.get(path)
            return response if all(text in response.text for text in texts) else None

        return await eventually(shown, what=f"{path} showing {texts}")

    return wait

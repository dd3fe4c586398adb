"""Broken object level authorisation, route by route: tenant B's key with tenant A's ids reads,
changes and lists nothing of A, on every route of every service (the harness is in conftest.py;
a route added later is attacked too, or the test asks for its request body / exemption)."""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from pypdf import PdfWriter

from parcours_contracts import InvoiceReceived, InvoiceSummary, InvoiceUnroutable
from parcours_devstack import demo
from tests.ingest.conftest import mapping_profile

from .conftest import MARK_A, Request, Scenario  # noqa: TID252 (the harness lives next to the tests)

TOKEN_ROUTE = "the token in the path is the credential (signed, tenant inside); see tests/tracker/test_tracker_links.py"


def pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def as_json(build):
    return lambda mark: {"json": build(mark)}


def invoice(mark: str, number: str | None = None) -> dict:
    body = demo.invoice_body(number or f"{mark.upper()}-1", {"ref": f"{mark.upper()}-C1", "name": f"{mark} SARL"},
                             issued=date.today(), due_in_days=30, lines=[(f"{mark} consulting", "2", "500.00", "20")])
    return body


def summary(mark: str, number: str) -> InvoiceSummary:
    return InvoiceSummary(number=number, issue_date=date.today(), due_date=date.today() + timedelta(days=30),
                          currency="EUR", total_excl_tax=Decimal("1000.00"), total_tax=Decimal("200.00"),
                          total_incl_tax=Decimal("1200.00"), seller_name=f"{mark} seller", buyer_name=f"{mark} buyer",
                          customer_ref="ALPHA-C1")


# ---------------------------------------------------------------------------------------------- router

CUSTOMER = as_json(lambda mark: {"name": f"{mark} SAS", "channels": ["email_link"], "group": "smb",
                                 "contacts": [{"email": f"ap@{mark}.example", "name": f"{mark} AP"}]})


async def router_setup(env):
    assert (await env.api("PUT", "/v1/customers/ALPHA-C1", **CUSTOMER(MARK_A))).status_code == 201
    env.ids["ref"] = "ALPHA-C1"


ROUTER = Scenario("router", router_setup, requests={"PUT /v1/customers/{ref}": Request(CUSTOMER)})


async def test_router_customers_stay_with_their_tenant(isolation):
    await isolation(ROUTER)


# ---------------------------------------------------------------------------------------------- ingest

PDF_BODY = {"content": pdf(), "headers": {"Content-Type": "application/pdf"}}
PROFILE = as_json(lambda mark: mapping_profile(seller=f"{mark} SAS"))
SPLIT_RULE = as_json(lambda mark: {"mode": "anchor", "anchor": rf"{mark} n° (?P<number>S-\d+)"})


async def ingest_setup(env):
    created = await env.api("POST", "/v1/invoices", files={
        "invoice": ("alphasecret.json", json.dumps(invoice(MARK_A)), "application/json"),
        "pdf": ("alphasecret.pdf", pdf(), "application/pdf")})
    assert created.status_code == 202, created.text
    env.ids["invoice_id"] = created.json()["invoice_id"]
    batch = await env.api("POST", "/v1/batches", json=[invoice(MARK_A, "ALPHASECRET-B1")])
    assert batch.status_code == 202, batch.text
    env.ids.update(batch_id=batch.json()["batch_id"], seq="1", name="alpha")
    for path, body in (("/v1/mapping-profiles/alpha", PROFILE), ("/v1/split-rules/alpha", SPLIT_RULE)):
        assert (await env.api("PUT", path, **body(MARK_A))).status_code == 201
    assert (await env.api("PUT", "/v1/cgv", params={"filename": "alphasecret-cgv.pdf"}, **PDF_BODY)).status_code == 200
    annex = await env.api("POST", f"/v1/invoices/{env.ids['invoice_id']}/annexes",
                          params={"filename": "alphasecret-annex.pdf"}, **PDF_BODY)
    assert annex.status_code == 201, annex.text
    env.ids["annex_id"] = str(annex.json()["annex_id"])


INGEST = Scenario(
    "ingest", ingest_setup, own_ids=("invoice_id", "batch_id"),
    requests={
        "POST /v1/invoices": Request(as_json(invoice), owner_status=(409,)),  # A's copy is a duplicate of A's invoice
        "POST /v1/tenants": Request(as_json(lambda mark: {"name": f"{mark} bis", "tenant_id": f"{mark}-bis"})),
        "POST /v1/batches": Request(as_json(lambda mark: [invoice(mark, f"{mark.upper()}-B2")])),
        "PUT /v1/mapping-profiles/{name}": Request(PROFILE),
        "PUT /v1/split-rules/{name}": Request(SPLIT_RULE),
        "PUT /v1/cgv": Request(lambda mark: {**PDF_BODY, "params": {"filename": f"{mark}.pdf"}}),
        "POST /v1/invoices/{invoice_id}/annexes": Request(lambda mark: {**PDF_BODY, "params": {"filename": "x.pdf"}}),
        "GET /v1/invoices/{invoice_id}/source": Request(owner_status=(404,)),  # kept for XML and PDF sources only
        "GET /v1/batches/{batch_id}/parts/{seq}": Request(owner_status=(404,)),  # a JSON batch has no parts
    },
    settings={"document_reader_token": "bola-reader-token"},
)


async def test_ingest_invoices_batches_and_definitions_stay_with_their_tenant(isolation):
    await isolation(INGEST)


# ---------------------------------------------------------------------------------------------- channels

BRANDING = as_json(lambda mark: {"name": f"{mark} Services", "primary_color": "#0b7285",
                                 "signature": f"{mark} billing"})
TEMPLATE = as_json(lambda mark: {"source": f"{mark}: invoice {{{{ number }}}}"})
SENDER = as_json(lambda mark: {"domain": f"{mark}.example", "from_address": f"billing@{mark}.example"})


async def channels_setup(env):
    assert (await env.api("PUT", "/v1/branding", **BRANDING(MARK_A))).status_code == 200
    assert (await env.api("PUT", "/v1/templates/fr/subject", **TEMPLATE(MARK_A))).status_code == 200
    assert (await env.api("PUT", "/v1/sender-domain", **SENDER(MARK_A))).status_code == 201
    env.ids.update(language="fr", part="subject")


CHANNELS = Scenario(
    "channels", channels_setup,
    requests={"PUT /v1/branding": Request(BRANDING), "PUT /v1/templates/{language}/{part}": Request(TEMPLATE),
              "PUT /v1/sender-domain": Request(SENDER)},
    signed={"POST /v1/peppol/events": "HMAC-signed by the access point (tests/channels)",
            "POST /v1/as2/mdn": "signed MDN of the AS2 partner (tests/channels)"},
    # nothing answers DNS here: the check reports the records as missing, quickly
    settings={"dns_nameservers": ["127.0.0.1"], "dns_port": 9, "dns_timeout": 0.2},
)


async def test_channels_branding_templates_and_sender_domains_stay_with_their_tenant(isolation):
    await isolation(CHANNELS)


def received(number: str) -> InvoiceReceived:
    invoice_id = uuid.uuid4()
    return InvoiceReceived(tenant_id=MARK_A, invoice_id=invoice_id, correlation_id=f"corr-{invoice_id}",
                           invoice=summary(MARK_A, number))


async def known(env, path: str, what: str):
    async def answered():
        response = await env.api("GET", path)
        return response if response.status_code == 200 else None
    return (await env.eventually(answered, what=what)).json()


# ---------------------------------------------------------------------------------------------- tracker

def camt053(mark: str) -> dict:
    """A bank statement paying A's invoice by its number and amount (B must not settle A's invoice with it)."""
    entry = (f'<Ntry><Amt Ccy="EUR">1200.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
             f"<BookgDt><Dt>{date.today()}</Dt></BookgDt><NtryDtls><TxDtls><Refs><EndToEndId>E2E-{mark}</EndToEndId>"
             f'</Refs><AmtDtls><TxAmt><Amt Ccy="EUR">1200.00</Amt></TxAmt></AmtDtls>'
             f"<RmtInf><Ustrd>F-A-0001</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
           f"<BkToCstmrStmt><GrpHdr><MsgId>MSG-{mark}</MsgId><CreDtTm>2026-11-21T06:00:00</CreDtTm></GrpHdr>"
           f"<Stmt><Id>STMT-{mark}</Id><CreDtTm>2026-11-21T06:00:00</CreDtTm><Acct><Id><IBAN>FR7630006000011234567890189"
           f"</IBAN></Id><Ccy>EUR</Ccy></Acct>{entry}</Stmt></BkToCstmrStmt></Document>")
    return {"content": xml.encode(), "headers": {"Content-Type": "application/xml"}}


async def tracker_setup(env):
    event = received("F-A-0001")
    await env.publish(event, InvoiceUnroutable.following(event, customer_ref="ALPHA-C1", reason="alphasecret unknown"))
    env.ids.update(invoice_id=str(event.invoice_id), token="not-a-token", channel="edi")
    async def projected():  # both events applied (they may arrive in either order)
        journey = await env.api("GET", f"/v1/invoices/{event.invoice_id}/journey")
        return journey.status_code == 200 and {"received", "unroutable"} <= {e["kind"] for e in journey.json()["events"]}
    await env.eventually(projected, what="A's invoice in the tracker")
    async def incident():
        return (await env.api("GET", "/v1/incidents")).json()["items"]
    env.ids["incident_id"] = (await env.eventually(incident, what="A's incident"))[0]["incident_id"]


TRACKER = Scenario(
    "tracker", tracker_setup, own_ids=("invoice_id", "incident_id"),
    requests={
        "POST /v1/invoices/{invoice_id}/events": Request(as_json(lambda mark: {"kind": "disputed",
                                                                               "reason": f"{mark} dispute"})),
        "POST /v1/invoices/{invoice_id}/payments": Request(as_json(lambda mark: {
            "payment_id": f"{mark}-1", "amount": "100.00", "paid_on": date.today().isoformat()})),
        "POST /v1/payments/camt053": Request(camt053),
        "POST /v1/incidents/{incident_id}/assign": Request(as_json(lambda mark: {"assignee": f"{mark} agent"})),
        # A's payment, just before in the same run, settled the incident already
        "POST /v1/incidents/{incident_id}/resolve": Request(as_json(lambda mark: {"resolution": f"{mark} done"}),
                                                            owner_status=(409,)),
        "PUT /v1/admin/clock": Request(as_json(lambda mark: {"now": "2027-01-15T09:00:00Z"})),
        "POST /v1/acks/{channel}": Request(as_json(lambda mark: {"ack_id": "X", "invoice_id": str(uuid.uuid4())})),
    },
    signed={"POST /v1/acks/{channel}": "HMAC-signed by the partner (tests/tracker/test_tracker_acks.py)",
            "GET /l/{token}": TOKEN_ROUTE, "GET /v/{token}": TOKEN_ROUTE, "POST /v/{token}/open": TOKEN_ROUTE},
)


async def test_tracker_journeys_payments_and_incidents_stay_with_their_tenant(isolation):
    await isolation(TRACKER)


# ---------------------------------------------------------------------------------------------- dunning

STEP = {"anchor": "due_date", "offset_days": 5, "action": {"kind": "reminder", "template": "late"}}
STRATEGY = as_json(lambda mark: {"id": "alpha-s", "name": f"{mark} strategy", "steps": [{"name": "only", **STEP}]})
HOLD = as_json(lambda mark: {"reason": f"{mark} on the phone"})


async def dunning_setup(env):
    event = received("F-A-0002")
    await env.publish(event)
    env.ids.update(invoice_id=str(event.invoice_id), strategy_id="alpha-s", version="1", group="smb",
                   customer_ref="ALPHA-C1", step="alpha_step")
    await known(env, f"/v1/invoices/{event.invoice_id}/reminders", "A's invoice in dunning")
    assert (await env.api("POST", "/v1/strategies", **STRATEGY(MARK_A))).status_code == 201
    added = await env.api("POST", f"/v1/invoices/{event.invoice_id}/steps", json={"name": "alpha_step", **STEP})
    assert added.status_code in (200, 201), added.text
    for path, body in (("/v1/assignments/customers/ALPHA-C1", {"strategy_id": "alpha-s"}),
                       ("/v1/customers/ALPHA-C1/dunning", {"group_reminders": True})):
        assert (await env.api("PUT", path, json=body)).status_code in (200, 201)


DUNNING = Scenario(
    "dunning", dunning_setup, own_ids=("invoice_id",),
    requests={
        "POST /v1/strategies": Request(STRATEGY, owner_status=(409,)),  # A's strategy exists already
        "POST /v1/strategies/{strategy_id}/versions": Request(as_json(lambda mark: {
            "name": f"{mark} strategy v2", "steps": [{"name": "only", **STEP}]})),
        # B simulates with A's invoice: dunning must not tell B anything about it
        "POST /v1/strategies/{strategy_id}/simulate": Request(as_json(lambda mark: {"invoice_id": "{invoice_id}"})),
        "POST /v1/invoices/{invoice_id}/steps": Request(as_json(lambda mark: {"name": "alpha_step", **STEP}),
                                                        owner_status=(409,)),  # A added it in the setup
        "POST /v1/invoices/{invoice_id}/pause": Request(HOLD),
        "POST /v1/invoices/{invoice_id}/resume": Request(HOLD),
        "POST /v1/invoices/{invoice_id}/exclude": Request(HOLD),
        # A's exclude, just before in the same run, ended the invoice's dunning
        "DELETE /v1/invoices/{invoice_id}/steps/{step}": Request(owner_status=(409,)),
        "PUT /v1/assignments/groups/{group}": Request(as_json(lambda mark: {"strategy_id": "alpha-s"})),
        "PUT /v1/assignments/customers/{customer_ref}": Request(as_json(lambda mark: {"strategy_id": "alpha-s"})),
        "PUT /v1/assignments/invoices/{invoice_id}": Request(as_json(lambda mark: {"strategy_id": "alpha-s"}),
                                                             owner_status=(409,)),  # A's invoice arrived already
        "PUT /v1/customers/{customer_ref}/dunning": Request(as_json(lambda mark: {"group_reminders": False})),
        "POST /v1/customers/{customer_ref}/pause": Request(HOLD),
        "POST /v1/customers/{customer_ref}/resume": Request(HOLD),
        "PUT /v1/admin/clock": Request(as_json(lambda mark: {"now": "2027-01-15T09:00:00Z"})),
    },
    ahead_of_arrival={"PUT /v1/assignments/invoices/{invoice_id}": "an invoice's strategy may be chosen before "
                      "its invoice.received arrives; B's choice stays B's (A's reminders are compared before/after)"},
    settings={"time_travel": True, "tick_seconds": 3600},
)


async def test_dunning_strategies_assignments_and_invoices_stay_with_their_tenant(isolation):
    await isolation(DUNNING)


# ---------------------------------------------------------------------------------------------- portal

ADMIN = {"Authorization": f"Bearer {demo.ADMIN_TOKEN}"}
CONSOLE_PASSWORD = "correct horse battery staple"


async def console_session(env, mark: str, key: str) -> dict[str, str]:
    """A credit manager of the tenant, signed in: its session cookie, and its form token for the forms."""
    user = {"tenant_id": mark, "email": f"cm@{mark}.example", "name": f"{mark} CM", "role": "admin",
            "password": CONSOLE_PASSWORD}
    assert (await env.client.put("/v1/admin/users", json=user, headers=ADMIN)).status_code == 201
    login = await env.client.post("/login", data={"email": user["email"], "password": CONSOLE_PASSWORD})
    assert login.status_code == 303, login.text
    env.client.cookies.clear()  # each request names its tenant's cookie itself
    cookie = "; ".join(f"{name}={value}" for name, value in login.cookies.items())
    page = await env.client.get("/console/users", headers={"Cookie": cookie, "Accept": "text/html"})
    env.values[mark]["form_token"] = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    return {"Cookie": cookie, "Accept": "text/html"}


async def portal_setup(env):
    from tests.portal.conftest import Journey

    journey = Journey(tenant_id=MARK_A, number="ALPHASECRET-P1", customer_ref="ALPHASECRET-C")
    incident = journey.incident()
    await env.publish(journey.received(), journey.requested(), journey.dispatched(), incident)
    env.ids.update(invoice_id=str(journey.invoice_id), incident_id=str(incident.incident_id), kind="pdf",
                   attachment_id=str(uuid.uuid4()), token="not-a-token", hold="pause", strategy_id="alpha-s")

    colleague = await env.client.put("/v1/admin/users", headers=ADMIN, json={
        "tenant_id": MARK_A, "email": f"colleague@{MARK_A}.example", "name": "Colleague", "role": "viewer",
        "password": CONSOLE_PASSWORD})
    env.ids.update(user_id=colleague.json()["id"], access="disable")

    async def shown():
        page = await env.api("GET", "/console/incidents")
        return "ALPHASECRET-P1" in page.text
    await env.eventually(shown, what="A's invoice and incident in the console")

    async def planned():  # dunning, which the console asks, consumes the same events on its own time
        page = await env.api("GET", f"/console/invoices/{journey.invoice_id}/dunning")
        return 'id="plan-status"' in page.text
    await env.eventually(planned, what="A's invoice planned by dunning")


FORM = {"form_token": "{form_token}"}
CONSOLE_TOKEN = "bola-console-token"
STEPS = json.dumps([{"name": "only", **STEP}])


async def portal_neighbours(run_service) -> dict:
    """A dunning the console acts on for the session's tenant (with its console token)."""
    dunning = await run_service("dunning", console_token=CONSOLE_TOKEN)
    return {"dunning_url": dunning.url, "dunning_console_token": CONSOLE_TOKEN}
PORTAL = Scenario(
    "portal", portal_setup, own_ids=("invoice_id", "incident_id", "user_id"), sign_in=console_session,
    neighbours=portal_neighbours,
    requests={
        "POST /login": Request(lambda mark: {"data": {"email": f"cm@{mark}.example", "password": CONSOLE_PASSWORD}}),
        "POST /lang": Request(lambda mark: {"data": {"lang": "en", "next": "/console", **FORM}}),
        "POST /console/users": Request(lambda mark: {"data": {
            "email": f"second@{mark}.example", "name": f"{mark} second", "role": "viewer",
            "password": CONSOLE_PASSWORD, **FORM}}),
        "POST /console/incidents/{incident_id}/resolve": Request(lambda mark: {"data": {
            "resolution": f"{mark} called them", **FORM}}),
        "PUT /v1/admin/users": Request(as_json(lambda mark: {
            "tenant_id": mark, "email": f"third@{mark}.example", "name": "x", "role": "viewer",
            "password": CONSOLE_PASSWORD})),
        "POST /console/users/{user_id}/{access}": Request(lambda mark: {"data": FORM}),
        "POST /console/incidents/{incident_id}/actions": Request(lambda mark: {"data": {
            "action": "called", "note": f"{mark} called", **FORM}}),
        "POST /console/invoices/{invoice_id}/dunning/{hold}": Request(lambda mark: {"data": {
            "reason": f"{mark} on the phone", **FORM}}),
        "POST /console/strategies": Request(lambda mark: {"data": {
            "new_id": "alpha-s", "name": f"{mark} strategy", "steps": STEPS, **FORM}},
            owner_status=(409,)),  # A saved it in the same run, as B did its own
        "POST /console/strategies/{strategy_id}/versions": Request(lambda mark: {"data": {
            "name": f"{mark} strategy v2", "steps": STEPS, **FORM}}),
        "POST /console/strategies/{strategy_id}/preview": Request(lambda mark: {"data": {
            "name": f"{mark} strategy v3", "steps": STEPS, **FORM}}),
        "GET /console/attachments/{attachment_id}": Request(owner_status=(404,)),  # A's recipients sent none
        # ingest is not wired here: the owner is told the documents are unavailable
        "GET /console/invoices/{invoice_id}/document.{kind}": Request(owner_status=(404,)),
        "POST /portal/sign-in": Request(lambda mark: {"data": {"email": f"ap@{mark}.example"}}),
        # recipients' routes: a console session is no recipient session
        "GET /portal/invoices/{invoice_id}": Request(owner_status=(401, 303)),
        "GET /portal/invoices/{invoice_id}/document.{kind}": Request(owner_status=(401, 303, 404)),
        "POST /portal/invoices/{invoice_id}/answer": Request(lambda mark: {"data": {"action": "approved", **FORM}},
                                                             owner_status=(401, 303)),
        "GET /portal": Request(owner_status=(303,)),
        "GET /": Request(owner_status=(303, 307)),
    },
    exempt={"POST /logout": "ends the caller's own session (tests/portal/test_portal_console.py)"},
    operator={"PUT /v1/admin/users": "the operator's bootstrap of console users (admin token)"},
    public={"GET /login/oidc": "sign-in through the identity provider: nothing of a tenant before it",
            "GET /login/oidc/callback": "the identity provider's answer (state and code checked there)"},
    signed={"GET /p/{token}": TOKEN_ROUTE, "GET /portal/magic/{token}": TOKEN_ROUTE,
            "POST /portal/magic/{token}": TOKEN_ROUTE},
)


async def test_portal_console_stays_with_its_tenant(isolation):
    await isolation(PORTAL)

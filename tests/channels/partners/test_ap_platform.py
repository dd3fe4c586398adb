"""ap_platform end to end: channels push invoices to two AP platforms configured by settings
only (OAuth2 + nested body; API key + flat body), served by simulators over real HTTP; the
platforms acknowledge by signed webhook to the real tracker, which publishes delivery.acked."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from parcours_channels.domain.ap_platform import ApPartner, choose_partner, partner_body, value_at
from parcours_contracts import DeliveryAcked, DispatchFailed, IncidentOpened, InvoiceDispatched, topics
from parcours_devstack.partners.ap_platform import ApPlatformSimulator

YOOZ_SECRET, FREEDZ_SECRET = "yooz-webhook-secret", "freedz-webhook-secret"


@pytest.fixture
async def platforms(serve, monkeypatch):
    """Two AP platforms, and the channels setting that declares them (nothing else changes)."""
    yooz = ApPlatformSimulator(
        "yooz", submit_path="/api/v2/purchase-invoices", client_id="parcours", client_secret="yooz-client-secret",
        required={"externalId": "text", "supplier.name": "text", "invoice.number": "text",
                  "invoice.totalAmount": "text", "file.name": "text", "file.content": "base64",
                  "metadata.tenant": "text", "metadata.invoice": "text"},
        tenant_path="metadata.tenant", invoice_path="metadata.invoice", webhook_secret=YOOZ_SECRET)
    freedz = ApPlatformSimulator(
        "freedz", submit_path="/v1/documents", api_key="freedz-api-key", reference_field="documentId",
        required={"reference": "text", "invoiceNumber": "text", "amount": "text", "pdf": "base64", "tenant": "text",
                  "parcoursInvoice": "text"},
        tenant_path="tenant", invoice_path="parcoursInvoice", webhook_secret=FREEDZ_SECRET)
    yooz_url, freedz_url = await serve(yooz.app()), await serve(freedz.app())
    monkeypatch.setenv("PARCOURS_CHANNELS_AP_PLATFORM_PARTNERS", json.dumps({
        "yooz": {"base_url": yooz_url, "submit_path": "/api/v2/purchase-invoices", "recipient_domains": ["yooz.example"],
                 "auth": {"kind": "oauth2", "token_url": f"{yooz_url}/oauth/token", "client_id": "parcours",
                          "client_secret": "yooz-client-secret"},
                 "mapping": {"externalId": "dispatch_id", "supplier.name": "seller_name", "invoice.number": "number",
                             "invoice.totalAmount": "total_incl_tax", "invoice.currency": "currency",
                             "file.name": "document_name", "file.content": "document_base64",
                             "metadata.tenant": "tenant_id", "metadata.invoice": "invoice_id"}},
        "freedz": {"base_url": freedz_url, "submit_path": "/v1/documents", "reference_field": "documentId",
                   "recipient_domains": ["freedz.example"],
                   "auth": {"kind": "api_key", "header": "X-Api-Key", "key": "freedz-api-key"},
                   "mapping": {"reference": "dispatch_id", "invoiceNumber": "number", "amount": "total_incl_tax",
                               "pdf": "document_base64", "tenant": "tenant_id", "parcoursInvoice": "invoice_id"}},
    }))
    return yooz, freedz


@pytest.fixture
async def tracker(run_service, platforms):
    """The real tracker taking both platforms' signed acks on /v1/acks/ap_platform."""
    host = await run_service("tracker", ack_secrets={"ap_platform": [YOOZ_SECRET, FREEDZ_SECRET]})
    for platform in platforms:
        platform.webhook_url = f"{host.url}/v1/acks/ap_platform"
    return host


async def test_two_platforms_configured_by_settings_take_the_invoice_and_ack_it(
        ingest, platforms, tracker, start_channels, partner_dispatch, eventually):
    yooz, freedz = platforms
    channels = await start_channels()
    first, second = await ingest.post(kind="cii"), await ingest.post(kind="cii")
    await channels.publish(partner_dispatch(*first, channel="ap_platform", recipient="acme@yooz.example"),
                           partner_dispatch(*second, channel="ap_platform", recipient="acme-suppliers@freedz.example"))

    async def both_dispatched():
        outcomes = {e.invoice_id: e for e in await channels.outcomes()}
        return outcomes if len(outcomes) == 2 else None

    dispatched = await eventually(both_dispatched, what="both invoices handed over", timeout=60)
    assert all(isinstance(e, InvoiceDispatched) for e in dispatched.values())
    [yooz_doc], [freedz_doc] = yooz.documents.values(), freedz.documents.values()
    assert dispatched[first[0]].messages[0].message_id == yooz_doc.id
    assert yooz_doc.body["invoice"]["number"] == first[1] and yooz_doc.body["metadata"]["invoice"] == str(first[0])
    assert b"CrossIndustryInvoice" in base64.b64decode(yooz_doc.body["file"]["content"])
    assert freedz_doc.body["invoiceNumber"] == second[1] and freedz_doc.body["tenant"] == "acme"

    done: set[str] = set()

    async def acked():
        for key, platform, doc in (("y", yooz, yooz_doc), ("f", freedz, freedz_doc)):
            if key not in done and (await platform.ack(doc.id)).status_code in (200, 202):
                done.add(key)
        return len(done) == 2

    await eventually(acked, what="both platforms' webhooks taken by the tracker", timeout=60)
    expected = {(first[0], "ap_platform", f"{yooz_doc.id}:received"),
                (second[0], "ap_platform", f"{freedz_doc.id}:received")}

    async def published():  # the tracker's outbox relays its delivery.acked
        acks = {(e.invoice_id, e.channel, e.ack_id) for e in await channels.read(topics.DELIVERY_ACKED)
                if isinstance(e, DeliveryAcked)}
        return acks == expected

    await eventually(published, what="delivery.acked for both invoices", timeout=60)


async def test_a_platform_refusal_fails_for_good_so_router_falls_back(
        outcomes, ingest, platforms, start_channels, partner_dispatch):
    yooz, _ = platforms
    channels = await start_channels()
    yooz.refuse_next(422, "Supplier unknown to this buyer")
    invoice_id, number = await ingest.post(kind="cii")
    await channels.publish(partner_dispatch(invoice_id, number, channel="ap_platform", recipient="acme@yooz.example"))
    [failure] = await outcomes(channels)
    assert isinstance(failure, DispatchFailed) and failure.permanent and failure.fallback_channels == ["email_link"]
    assert "yooz refused the invoice (422): Supplier unknown to this buyer" in failure.reason
    assert yooz.received == 0


async def test_a_503_is_retried_then_no_ack_in_time_opens_the_trackers_incident(
        outcomes, ingest, platforms, start_channels, partner_dispatch, submission, run_service, eventually):
    _, freedz = platforms
    await run_service("tracker", receipt_windows={"ap_platform": {"hours": 2 / 3600, "proof": "ack"}},
                      sweep_tick_seconds=0.3)
    channels = await start_channels()
    freedz.fail_next(1, status=503)
    invoice_id, number = await ingest.post(kind="cii")
    request = partner_dispatch(invoice_id, number, channel="ap_platform", recipient="ap@freedz.example")
    await channels.publish(request)
    assert [type(e) for e in await outcomes(channels)] == [InvoiceDispatched]
    assert freedz.received == 1 and freedz.submissions == 2
    row = await submission(channels.host, request.dispatch_id)
    assert (row.state, row.attempts, row.partner) == ("submitted", 2, "freedz")

    async def not_received():  # no webhook came within the (shortened) receipt window
        return [e for e in await channels.read(topics.INCIDENT_EVENTS)
                if isinstance(e, IncidentOpened) and e.invoice_id == invoice_id and e.kind == "not_received"]

    [incident] = await eventually(not_received, what="the tracker's not_received incident", timeout=60)
    assert incident.channel == "ap_platform"
    assert await channels.read(topics.DELIVERY_ACKED) == []


async def test_an_invoice_sent_as_data_is_pushed_as_factur_x_and_acked(
        outcomes, ingest, platforms, tracker, start_channels, partner_dispatch, eventually):
    _, freedz = platforms
    channels = await start_channels()
    invoice_id, number = await ingest.post(kind="json")
    await channels.publish(partner_dispatch(invoice_id, number, channel="ap_platform", recipient="ap@freedz.example"))
    [dispatched] = await outcomes(channels)
    assert isinstance(dispatched, InvoiceDispatched), dispatched
    [document] = freedz.documents.values()
    pdf = base64.b64decode(document.body["pdf"])
    assert pdf.startswith(b"%PDF") and b"factur-x.xml" in pdf and document.body["invoiceNumber"] == number

    async def acked():
        if (await freedz.ack(document.id)).status_code not in (200, 202):
            return False
        return [e.invoice_id for e in await channels.read(topics.DELIVERY_ACKED)] == [invoice_id]

    await eventually(acked, what="the platform's webhook turned into delivery.acked", timeout=60)


async def test_a_recipient_no_platform_serves_fails_clearly(
        outcomes, ingest, platforms, start_channels, partner_dispatch):
    channels = await start_channels()
    invoice_id, number = await ingest.post(kind="cii")
    await channels.publish(partner_dispatch(invoice_id, number, channel="ap_platform", recipient="x@elsewhere.example"))
    [failure] = await outcomes(channels)
    assert isinstance(failure, DispatchFailed) and "no configured AP platform serves x@elsewhere.example" in failure.reason


async def test_a_crash_between_push_and_record_pushes_once(
        ingest, platforms, partner_dispatch, publish, crash_and_restart, submission_in):
    yooz, _ = platforms
    invoice_id, number = await ingest.post(kind="cii")
    request = partner_dispatch(invoice_id, number, channel="ap_platform", recipient="acme@yooz.example")
    yooz.hold_next(5)

    async def taken():
        return yooz.received == 1

    async def recorded(database_url):
        state = await submission_in(database_url, request.dispatch_id)
        return state if state is not None and state[0] != "sending" else None

    state, attempts = await crash_and_restart(lambda: publish(request), taken, recorded)
    assert (state, attempts) == ("submitted", 2)
    assert yooz.received == 1 and yooz.submissions == 2  # the resubmission carried the same Idempotency-Key


def test_a_mapping_places_parcours_fields_and_names_only_known_ones():
    mapping = {"externalId": "dispatch_id", "invoice.number": "number", "invoice.amount": "total_incl_tax"}
    assert partner_body(mapping, {"dispatch_id": "d-1", "number": "F-1", "total_incl_tax": "12.00"}) == {
        "externalId": "d-1", "invoice": {"number": "F-1", "amount": "12.00"}}
    assert value_at({"data": {"uuid": "x"}}, "data.uuid") == "x" and value_at({"data": []}, "data.uuid") is None
    with pytest.raises(ValidationError, match="unknown Parcours field.*iban"):
        ApPartner.model_validate({"base_url": "https://ap.example", "auth": {"kind": "api_key", "key": "k"},
                                  "mapping": {"bank": "iban"}})


def test_the_partner_is_the_one_serving_the_recipients_mail_domain():
    partners = {"yooz": frozenset({"yooz.example"}), "freedz": frozenset({"freedz.example"})}
    assert choose_partner(partners, ["Freedz.Example"]) == "freedz"
    assert choose_partner(partners, ["elsewhere.example"]) is None
    assert choose_partner({"only": frozenset()}, ["anything.example"]) == "only"

"""peppol: DispatchRequested → ingest's UBL (read by claim check) made Peppol BIS Billing 3.0 → our
access point's REST API (a simulator over real HTTP) → its transport receipt and the buyer's Invoice
Responses as delivery.acked, by signed webhook or by polling."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest
from lxml import etree

from parcours_channels.domain.peppol import CUSTOMIZATION_ID, PROFILE_ID
from parcours_contracts import DeliveryAcked, DispatchFailed, InvoiceDispatched, topics
from parcours_devstack.partners.peppol_ap import PeppolAccessPoint

WEBHOOK_SECRET = "test-peppol-webhook-secret"
NS = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
      "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}


@pytest.fixture
async def access_point(serve, monkeypatch) -> PeppolAccessPoint:
    """Our access point's simulator, and channels configured for it (quick polling unless a test slows it)."""
    simulator = PeppolAccessPoint(webhook_secret=WEBHOOK_SECRET)
    url = await serve(simulator.app())
    simulator.settings = {"ap_url": url, "api_key": simulator.api_key, "webhook_secret": WEBHOOK_SECRET,
                          "poll_seconds": 0.2, "first_check_seconds": 0.1, "longest_check_seconds": 0.3,
                          "timeout_seconds": 10}
    monkeypatch.setenv("PARCOURS_CHANNELS_PEPPOL", json.dumps(simulator.settings))
    return simulator


async def acks(channels) -> list[str]:
    return [ack.status for ack in await channels.read(topics.DELIVERY_ACKED) if isinstance(ack, DeliveryAcked)]


async def test_the_receipt_and_the_buyers_responses_come_back_by_signed_webhook(
        ingest, access_point, start_channels, partner_dispatch, publish, outcomes, submission, eventually):
    access_point.auto_responses = ("AB", "IP", "AP", "PD")
    channels = await start_channels(peppol={**access_point.settings, "poll_seconds": 3600,
                                            "first_check_seconds": 3600})  # only the webhook tells
    webhook = f"{channels.host.url}/v1/peppol/events"
    access_point.webhook_url = webhook
    invoice_id, number = await ingest.post(kind="json")
    request = partner_dispatch(invoice_id, number, channel="peppol")
    await publish(request)

    (outcome,) = await outcomes(channels)
    assert isinstance(outcome, InvoiceDispatched) and outcome.channel == "peppol"
    (transmission,) = access_point.transmissions.values()
    assert outcome.messages[0].message_id == transmission.id
    assert await eventually(lambda: _acks_at_least(channels, 5), what="receipt and four responses") == [
        "RECEIVED", "AB", "IP", "AP", "PD"]
    row = await submission(channels.host, request.dispatch_id)
    assert (row.state, row.last_status, row.partner_ref) == ("done", "PD", transmission.id)

    document = etree.fromstring(transmission.document)
    assert document.findtext("cbc:CustomizationID", namespaces=NS) == CUSTOMIZATION_ID
    assert document.findtext("cbc:ProfileID", namespaces=NS) == PROFILE_ID
    assert (transmission.sender, transmission.receiver) == ("0009:73282932000074", "0009:55210055400013")
    seller = document.find("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", NS)
    assert (seller.get("schemeID"), seller.text) == ("0009", "73282932000074")
    assert document.findtext("cbc:BuyerReference", namespaces=NS) == request.invoice.customer_ref
    assert document.findtext("cbc:ID", namespaces=NS) == number and len(document.findall("cbc:Note", NS)) <= 1

    # The webhook is signed; a replay changes nothing; a forged or malformed one is refused.
    replay = json.dumps(transmission.events[-1]).encode()
    async with httpx.AsyncClient() as client:
        assert (await client.post(webhook, content=replay, headers=_signed(replay))).status_code == 204
        forged = await client.post(webhook, content=replay, headers=_signed(replay, secret="guess"))
        stale = await client.post(webhook, content=replay, headers=_signed(replay, at=time.time() - 3600))
        malformed = await client.post(webhook, content=b'{"type": "nonsense"}', headers=_signed(b'{"type": "nonsense"}'))
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert malformed.status_code == 422 and malformed.headers["content-type"].startswith("application/problem+json")
    assert any(error["pointer"] == "/id" for error in malformed.json()["errors"])
    assert len(await acks(channels)) == 5


async def test_a_rejection_at_the_receiver_fails_for_good_but_a_buyers_refusal_is_reported(
        ingest, access_point, start_channels, partner_dispatch, publish, outcomes, submission, eventually):
    channels = await start_channels()  # polling only
    access_point.reject_next("Unknown supplier")
    refused_id, refused_number = await ingest.post(kind="json")
    refused = partner_dispatch(refused_id, refused_number, channel="peppol")
    await publish(refused)
    outcome, failure = await outcomes(channels, 2)
    assert isinstance(outcome, InvoiceDispatched) and isinstance(failure, DispatchFailed)
    assert failure.permanent and failure.fallback_channels == ["email_link"] and "Unknown supplier" in failure.reason
    assert (await submission(channels.host, refused.dispatch_id)).state == "rejected"

    invoice_id, number = await ingest.post(kind="json")
    request = partner_dispatch(invoice_id, number, channel="peppol")
    await publish(request)
    await eventually(lambda: _acks_at_least(channels, 1), what="the transport receipt")
    await access_point.respond(list(access_point.transmissions)[-1], "RE", "Wrong order")
    assert await eventually(lambda: _acks_at_least(channels, 2), what="the buyer's refusal") == ["RECEIVED", "RE"]
    assert (await submission(channels.host, request.dispatch_id)).state == "done"
    assert len(await outcomes(channels, 3)) == 3  # no failure for an invoice the buyer has and refused


async def test_no_receipt_in_time_leaves_the_invoice_dispatched_without_proof(
        ingest, access_point, start_channels, partner_dispatch, publish, outcomes, given_up):
    channels = await start_channels(peppol={**access_point.settings, "receipt_deadline_seconds": 1})
    access_point.silent_next()
    invoice_id, number = await ingest.post(kind="json")
    request = partner_dispatch(invoice_id, number, channel="peppol")
    await publish(request)

    (outcome,) = await outcomes(channels)
    assert isinstance(outcome, InvoiceDispatched)

    row = await given_up(channels.host, request.dispatch_id, "the transmission given up")
    assert row.last_status == "no-receipt" and row.checks >= 1
    assert await acks(channels) == []  # the tracker's receipt window opens the not-received incident


async def test_a_busy_access_point_is_tried_again_under_the_same_key(
        ingest, access_point, start_channels, partner_dispatch, publish, outcomes, submission, eventually):
    channels = await start_channels()
    access_point.fail_next(1)
    invoice_id, number = await ingest.post(kind="cii")
    request = partner_dispatch(invoice_id, number, channel="peppol")
    await publish(request)

    (outcome,) = await outcomes(channels)
    assert isinstance(outcome, InvoiceDispatched)
    assert access_point.posts == 2 and len(access_point.transmissions) == 1
    assert await eventually(lambda: _acks_at_least(channels, 1), what="the transport receipt") == ["RECEIVED"]
    assert (await submission(channels.host, request.dispatch_id)).attempts == 2


async def test_a_crash_mid_send_sends_once(ingest, access_point, partner_dispatch, publish, crash_and_restart,
                                           submission_in):
    release = access_point.hold()
    invoice_id, number = await ingest.post(kind="json")
    request = partner_dispatch(invoice_id, number, channel="peppol")

    async def taken():
        return len(access_point.transmissions) == 1

    async def recorded(database_url):
        state = await submission_in(database_url, request.dispatch_id)
        return state if state is not None and state[0] != "sending" else None

    try:
        state, attempts = await crash_and_restart(lambda: publish(request), taken, recorded)
    finally:
        release.set()
    assert attempts == 2 and state in ("submitted", "acknowledged")
    assert len(access_point.transmissions) == 1 and access_point.posts == 2  # same Idempotency-Key


async def _acks_at_least(channels, count: int) -> list[str] | None:
    found = await acks(channels)
    return found if len(found) >= count else None


def _signed(body: bytes, *, secret: str = WEBHOOK_SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(at or time.time()))
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Peppol-Signature": f"t={timestamp},v1={signature}"}

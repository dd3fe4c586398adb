"""What every partner adapter does the same way, against its simulator over real HTTP / AS2: a partner
that stays away fails the dispatch for good after the last attempt (router falls back, nothing in the
DLQ); no credential ever reaches the logs, even at DEBUG. Also: an async AS2 MDN that never comes is
given up at its deadline; the Peppol webhook takes the old and the new secret while rotating."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

import httpx
import pytest

from parcours_contracts import DeliveryAcked, DispatchFailed, InvoiceDispatched, topics
from parcours_devstack.partners.ap_platform import ApPlatformSimulator
from parcours_devstack.partners.as2_peer import As2Peer, generate_identity
from parcours_devstack.partners.chorus_pro import ChorusProSimulator
from parcours_devstack.partners.peppol_ap import PeppolAccessPoint
from parcours_devstack.ports import free_port

from tests.channels.partners.conftest import READER_TOKEN

OUR_AS2_ID = "PARCOURS-ROBUST"
_OURS = generate_identity(OUR_AS2_ID)  # (private key PEM, certificate PEM): RSA generation is slow, once
OLD_SECRET, NEW_SECRET = "peppol-webhook-old-secret", "peppol-webhook-new-secret"
AP_KEY, AP_CLIENT_SECRET = "robust-ap-api-key-0123456789", "robust-ap-client-secret-0123456789"
PLATFORM_FIELDS = {"reference": "dispatch_id", "invoiceNumber": "number", "amount": "total_incl_tax",
                   "pdf": "document_base64", "tenant": "tenant_id", "parcoursInvoice": "invoice_id"}


@dataclass
class Partners:
    """The four partners' simulators, the channels settings naming them, and every credential involved."""

    chorus: ChorusProSimulator
    platform: ApPlatformSimulator
    peer: As2Peer
    access_point: PeppolAccessPoint
    settings: dict
    secrets: dict[str, str]


@pytest.fixture
async def partners(serve, chorus: ChorusProSimulator) -> Partners:
    platform = ApPlatformSimulator("robust", submit_path="/v1/documents", reference_field="documentId",
                                   client_id="parcours", client_secret=AP_CLIENT_SECRET,
                                   required={"reference": "text", "pdf": "base64", "tenant": "text"},
                                   tenant_path="tenant", invoice_path="parcoursInvoice")
    platform_url = await serve(platform.app())
    peer = As2Peer(as2_id="BUYER-ROBUST", senders={OUR_AS2_ID: _OURS[1]})
    peer.url = f"{await serve(peer.app())}/as2"
    access_point = PeppolAccessPoint(api_key=AP_KEY, webhook_secret=OLD_SECRET)
    ap_url = await serve(access_point.app())
    settings = {
        "ap_platform_partners": {"robust": {
            "base_url": platform_url, "submit_path": "/v1/documents", "reference_field": "documentId",
            "recipient_domains": ["robust.example"], "mapping": PLATFORM_FIELDS,
            "auth": {"kind": "oauth2", "token_url": f"{platform_url}/oauth/token", "client_id": "parcours",
                     "client_secret": AP_CLIENT_SECRET}}},
        "edi": {"as2_id": OUR_AS2_ID, "private_key": _OURS[0], "certificate": _OURS[1], "interchange_id": "PARCOURS",
                "interchange_qualifier": "ZZ", "timeout_seconds": 20,
                "partners": {"buyer": {"as2_id": peer.as2_id, "url": peer.url, "certificate": peer.certificate_pem,
                                       "interchange_id": "3012345000010", "customers": ["*"]}}},
        "peppol": {"ap_url": ap_url, "api_key": AP_KEY, "webhook_secret": NEW_SECRET,
                   "webhook_previous_secret": OLD_SECRET, "poll_seconds": 0.2, "first_check_seconds": 0.1,
                   "longest_check_seconds": 0.3, "timeout_seconds": 10},
    }
    cpro_account = base64.b64encode(f"{chorus.login}:{chorus.password}".encode()).decode()
    key_body = "".join(line for line in _OURS[0].splitlines() if "-----" not in line)
    secrets = {"PISTE client secret": chorus.client_secret, "Chorus Pro password": chorus.password,
               "cpro-account header": cpro_account, "AP platform client secret": AP_CLIENT_SECRET,
               "access point API key": AP_KEY, "Peppol webhook secret": NEW_SECRET,
               "previous Peppol webhook secret": OLD_SECRET, "document-reader token": READER_TOKEN,
               "AS2 private key": key_body[40:120]}
    return Partners(chorus, platform, peer, access_point, settings, secrets)


async def dispatches(ingest, partner_dispatch) -> dict[str, object]:
    """One dispatch per partner channel, each for an invoice ingest holds."""
    requests = {}
    for channel, kind, recipient in (("chorus_pro", "cii", "factures@buyer.example"),
                                     ("ap_platform", "cii", "acme@robust.example"),
                                     ("edi", "json", "factures@buyer.example"),
                                     ("peppol", "json", "factures@buyer.example")):
        invoice_id, number = await ingest.post(kind=kind)
        requests[channel] = partner_dispatch(invoice_id, number, channel=channel, recipient=recipient)
    return requests


async def test_a_partner_that_stays_away_fails_the_dispatch_after_the_last_attempt_so_router_falls_back(
        ingest, partners, start_channels, partner_dispatch, outcomes, submission):
    for simulator in (partners.chorus, partners.platform, partners.peer, partners.access_point):
        simulator.fail_next(1000)  # 503, for ever
    channels = await start_channels(partner_max_attempts=3, **partners.settings)
    requests = await dispatches(ingest, partner_dispatch)
    await channels.publish(*requests.values())

    found = {event.channel: event for event in await outcomes(channels, len(requests))}
    assert set(found) == set(requests)
    for channel, request in requests.items():
        failure = found[channel]
        assert isinstance(failure, DispatchFailed), (channel, failure)
        assert failure.permanent and failure.fallback_channels == ["email_link"], channel
        assert "unavailable after 3 attempts" in failure.reason and "503" in failure.reason, failure.reason
        row = await submission(channels.host, request.dispatch_id)
        assert (row.state, row.last_status, row.attempts) == ("failed", "unavailable", 3), channel
    assert partners.access_point.posts == 3 and partners.access_point.transmissions == {}
    assert partners.peer.posts == 3 and partners.peer.invoices == {}
    assert partners.platform.submissions <= 3 and partners.platform.received == 0
    assert partners.chorus.deposits == 0
    assert await channels.read(topics.DELIVERY_ACKED) == []


async def test_no_partner_credential_is_ever_logged(ingest, partners, start_channels, partner_dispatch, outcomes,
                                                    caplog, eventually):
    caplog.set_level(logging.DEBUG)
    partners.access_point.fail_next(1)  # a transient failure logged on the way
    channels = await start_channels(log_level="DEBUG", **partners.settings)
    requests = await dispatches(ingest, partner_dispatch)
    await channels.publish(*requests.values())

    found = {event.channel: event for event in await outcomes(channels, len(requests))}
    assert all(isinstance(event, InvoiceDispatched) for event in found.values()), found
    await eventually(lambda: _acked(channels, {"edi", "peppol", "chorus_pro"}), what="the partners' acks", timeout=60)
    async with httpx.AsyncClient() as client:  # a forged webhook is refused, and logged
        forged = b'{"transmission_id": "x"}'
        assert (await client.post(f"{channels.host.url}/v1/peppol/events", content=forged,
                                  headers=_signed(forged, "forged-secret"))).status_code == 401

    records = [r for r in caplog.records if not r.name.startswith("parcours_devstack")]
    assert sum(r.levelno == logging.DEBUG for r in records) > 10, "DEBUG records were captured"
    assert any(r.name.startswith("parcours_channels") for r in records)
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in records)
    leaked = [name for name, secret in partners.secrets.items() if secret in logged]
    leaked += ["a bearer token"] * any(token in logged for token in partners.chorus.tokens | partners.platform.tokens)
    leaked += ["a private key"] * ("PRIVATE KEY" in logged)
    assert not leaked, f"credentials in the logs: {leaked}"


async def test_the_peppol_webhook_takes_the_old_and_the_new_secret_while_rotating(
        ingest, partners, start_channels, partner_dispatch, outcomes, eventually):
    channels = await start_channels(**{**partners.settings, "peppol": {
        **partners.settings["peppol"], "poll_seconds": 3600, "first_check_seconds": 3600}})  # only webhooks tell
    partners.access_point.webhook_url = f"{channels.host.url}/v1/peppol/events"  # it still signs with the old one
    invoice_id, number = await ingest.post(kind="json")
    await channels.publish(partner_dispatch(invoice_id, number, channel="peppol"))
    await outcomes(channels)
    assert await eventually(lambda: _acked(channels, {"peppol"}), what="the receipt, by the old secret's webhook")
    (transmission,) = partners.access_point.transmissions.values()

    response = {"id": "rotation-1", "transmission_id": transmission.id, "type": "invoice.response", "code": "AB",
                "at": transmission.events[-1]["at"]}
    body = json.dumps(response).encode()
    async with httpx.AsyncClient() as client:
        answers = [(await client.post(partners.access_point.webhook_url, content=body, headers=_signed(body, secret)))
                   for secret in (NEW_SECRET, OLD_SECRET, "a-third-secret")]
    assert [a.status_code for a in answers] == [204, 204, 401]
    assert answers[2].headers["content-type"].startswith("application/problem+json")
    statuses = [ack.status for ack in await channels.read(topics.DELIVERY_ACKED) if isinstance(ack, DeliveryAcked)]
    assert statuses == ["RECEIVED", "AB"]  # the new secret's event applied once, its replay changed nothing


async def test_an_async_mdn_that_never_comes_is_given_up_at_its_deadline_but_late_proof_still_counts(
        ingest, partners, start_channels, partner_dispatch, outcomes, submission, given_up, eventually):
    port = free_port()
    edi = {**partners.settings["edi"], "mdn_url": f"http://127.0.0.1:{port}/v1/as2/mdn", "mdn_deadline_seconds": 0.5,
           "mdn_sweep_seconds": 0.2}
    edi["partners"]["buyer"] = {**edi["partners"]["buyer"], "mdn_mode": "async"}
    channels = await start_channels(http_port=port, **{**partners.settings, "edi": edi})
    partners.peer.mdn_delay = 4.0  # posted well after the deadline
    invoice_id, number = await ingest.post(kind="json")
    request = partner_dispatch(invoice_id, number, channel="edi")
    await channels.publish(request)
    (outcome,) = await outcomes(channels)
    assert isinstance(outcome, InvoiceDispatched)

    row = await given_up(channels.host, request.dispatch_id, "the submission given up at its MDN deadline")
    assert (row.last_status, row.next_check_at) == ("no-mdn", None)
    assert await channels.read(topics.DELIVERY_ACKED) == []  # the tracker's receipt window raises the incident
    assert partners.peer.mdn_posts == []

    (ack,) = await eventually(lambda: channels.read(topics.DELIVERY_ACKED), what="the late MDN's ack", timeout=30)
    assert (ack.invoice_id, ack.status) == (invoice_id, "MDN") and partners.peer.mdn_posts == [200]
    assert (await submission(channels.host, request.dispatch_id)).state == "acknowledged"
    assert len(await outcomes(channels)) == 1


async def _acked(channels, wanted: set[str]) -> bool:
    return wanted <= {ack.channel for ack in await channels.read(topics.DELIVERY_ACKED) if isinstance(ack, DeliveryAcked)}


def _signed(body: bytes, secret: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Peppol-Signature": f"t={timestamp},v1={signature}"}

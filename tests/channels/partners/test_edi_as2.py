"""edi: DispatchRequested → the invoice read from a real ingest → EDIFACT INVOIC D96A → AS2 (signed,
encrypted) to a real AS2 receiver (pyas2lib + pydifact) → its signed MDN as delivery.acked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid

import httpx
import pytest
from sqlalchemy import select

from parcours_channels.store.partner_submissions import PartnerSubmission
from parcours_contracts import DeliveryAcked, DispatchFailed, InvoiceDispatched, topics
from parcours_devstack.partners import PartnerServer
from parcours_devstack.ports import free_port
from parcours_devstack.partners.as2_peer import As2Peer, generate_identity

READER_TOKEN = "test-document-reader-token"
OUR_AS2_ID = "PARCOURS-TEST"
INVOICE = {
    "number": "F-EDI-0001", "issue_date": "2026-11-02", "due_date": "2026-12-02", "currency": "EUR",
    "seller": {"name": "Ateliers Dupont SAS", "siren": "732829320", "siret": "73282932000074", "vat_id": "FR44732829320"},
    "buyer": {"customer_ref": "CUST-7", "name": "Boulangerie Martin", "siren": "552100554"},
    "lines": [{"description": "Conseil", "quantity": "2", "unit_price": "500.00", "vat_rate": "20",
               "line_total_excl_tax": "1000.00"},
              {"description": "Farine", "quantity": "3", "unit_price": "9.50", "vat_rate": "5.5",
               "line_total_excl_tax": "28.50"}],
    "totals": {"total_excl_tax": "1028.50", "total_tax": "201.57", "total_incl_tax": "1230.07"},
}
_OURS = generate_identity(OUR_AS2_ID)  # one key pair for the module: RSA generation is slow


@pytest.fixture
async def peer():
    """The trading partner's AS2 receiver, over real HTTP."""
    partner = As2Peer(as2_id="BUYER-AS2", senders={OUR_AS2_ID: _OURS[1]})
    async with PartnerServer(partner.app()) as server:
        partner.url = f"{server.url}/as2"
        yield partner


@pytest.fixture
async def ingest(run_service, tenant_key):
    host = await run_service("ingest", document_reader_token=READER_TOKEN)
    key = await tenant_key(host, "acme")
    return host, key


def edi_settings(peer: As2Peer, ingest, **overrides) -> dict:
    """channels' settings for the EDI adapter and the claim check (as `make run` or a secret gives them)."""
    partner = {"as2_id": peer.as2_id, "url": peer.url, "certificate": peer.certificate_pem,
               "interchange_id": "3012345000010", "customers": ["CUST-7"]}
    edi = {"as2_id": OUR_AS2_ID, "private_key": _OURS[0], "certificate": _OURS[1], "interchange_id": "PARCOURS",
           "interchange_qualifier": "ZZ", "partners": {"buyer": partner}, "timeout_seconds": 20, **overrides}
    return {"ingest_url": f"http://127.0.0.1:{ingest[0].settings.http_port}", "ingest_document_token": READER_TOKEN,
            "edi": edi}


async def received_invoice(ingest, number: str = INVOICE["number"]) -> uuid.UUID:
    host, key = ingest
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.settings.http_port}") as client:
        response = await client.post("/v1/invoices", json={**INVOICE, "number": number},
                                     headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["invoice_id"])


async def edi_dispatch(ingest, make_dispatch, number: str = INVOICE["number"]):
    invoice_id = await received_invoice(ingest, number)
    return make_dispatch(invoice_id=invoice_id, channel="edi",
                         invoice={"number": number, "total_incl_tax": "1230.07", "customer_ref": "CUST-7"})


async def delivered(channels, request, eventually) -> None:
    """Publish the dispatch and wait for its outcome event (the delivery is over then) and an idle service."""
    await channels.publish(request)
    await eventually(channels.outcomes, timeout=60, what="the dispatch's outcome")
    await channels.settle()


async def submission(channels, dispatch_id) -> PartnerSubmission:
    async with channels.host.ctx.sessions() as session:
        return (await session.scalars(select(PartnerSubmission).where(PartnerSubmission.dispatch_id == dispatch_id))).one()


async def test_invoic_goes_signed_and_encrypted_and_the_signed_mdn_is_the_ack(peer, ingest, start_channels,
                                                                           make_dispatch, eventually):
    channels = await start_channels(**edi_settings(peer, ingest))
    request = await edi_dispatch(ingest, make_dispatch)
    await delivered(channels, request, eventually)

    (received,) = peer.invoices.values()
    assert (received.sender, received.number, received.type_code, received.total_incl_tax) == (
        OUR_AS2_ID, "F-EDI-0001", "380", "1230.07")
    assert received.segments[:4] == ["BGM", "DTM", "DTM", "NAD"]
    assert received.segments.count("LIN") == 2 and "UNS" in received.segments
    assert "UNH+1+INVOIC:D:96A:UN'" in received.interchange and "NAD+BY+552100554::ZZZ++Boulangerie Martin" in received.interchange
    assert "MOA+124:200'" in received.interchange and "MOA+124:1.57'" in received.interchange  # VAT per rate

    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, InvoiceDispatched) and outcome.channel == "edi"
    assert outcome.messages[0].message_id == received.message_id == f"{request.dispatch_id}@parcours.localhost"
    (ack,) = await channels.read(topics.DELIVERY_ACKED)
    assert isinstance(ack, DeliveryAcked)
    assert (ack.invoice_id, ack.channel, ack.status) == (request.invoice_id, "edi", "MDN")
    row = await submission(channels, request.dispatch_id)
    assert (row.state, row.partner, row.attempts, row.last_status) == ("acknowledged", "buyer", 1, "processed")
    assert row.detail["mdn_id"] == ack.ack_id


async def test_an_error_mdn_fails_the_dispatch_for_good_so_router_falls_back(peer, ingest, start_channels,
                                                                             make_dispatch, eventually):
    channels = await start_channels(**edi_settings(peer, ingest))
    peer.reject_next("unexpected-processing-error")
    request = await edi_dispatch(ingest, make_dispatch)
    await delivered(channels, request, eventually)

    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, DispatchFailed) and outcome.permanent
    assert outcome.fallback_channels == ["postal"] and "unexpected-processing-error" in outcome.reason
    assert await channels.read(topics.DELIVERY_ACKED) == []
    assert peer.invoices == {} and peer.posts == 1
    assert (await submission(channels, request.dispatch_id)).state == "rejected"


async def test_a_busy_partner_is_tried_again_with_the_same_message_id(peer, ingest, start_channels,
                                                                       make_dispatch, eventually):
    channels = await start_channels(**edi_settings(peer, ingest))
    peer.fail_next(1)
    request = await edi_dispatch(ingest, make_dispatch)
    await delivered(channels, request, eventually)

    assert peer.posts == 2 and len(peer.invoices) == 1
    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, InvoiceDispatched)
    assert len(await channels.read(topics.DELIVERY_ACKED)) == 1
    assert (await submission(channels, request.dispatch_id)).attempts == 2


async def test_no_mdn_in_time_leaves_the_invoice_dispatched_without_proof(peer, ingest, start_channels,
                                                                          make_dispatch, eventually):
    channels = await start_channels(**edi_settings(peer, ingest, timeout_seconds=0.5), partner_max_attempts=2)
    peer.silent, peer.answer_timeout = True, 2.0  # answers, but only after the sender gave up
    request = await edi_dispatch(ingest, make_dispatch)
    await delivered(channels, request, eventually)

    assert peer.posts == 2  # tried again once, then left to the tracker's receipt window
    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, InvoiceDispatched)
    assert await channels.read(topics.DELIVERY_ACKED) == []
    row = await submission(channels, request.dispatch_id)
    assert (row.state, row.last_status) == ("failed", "no-mdn")


async def test_a_crash_after_the_partner_processed_it_does_not_deliver_it_twice(peer, ingest, spawn_service,
                                                                                make_dispatch, make_database,
                                                                                kafka, eventually):
    """kill -9 of channels while the partner holds its MDN: the redelivered dispatch resends the same
    Message-ID, the partner answers its first MDN again, and the invoice is processed once."""
    from aiokafka import AIOKafkaProducer

    from tests.channels.conftest import read_topics

    settings = edi_settings(peer, ingest)
    env = {"BOUNCE_SMTP_PORT": "0", "INGEST_URL": settings["ingest_url"], "INGEST_DOCUMENT_TOKEN": READER_TOKEN,
           "EDI": json.dumps(settings["edi"])}
    release = peer.hold()
    database_url = make_database("channels")
    first = spawn_service("channels", database_url=database_url, extra=env).wait_ready()
    request = await edi_dispatch(ingest, make_dispatch)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topics.DISPATCH_REQUESTED, request.model_dump_json().encode(),
                                     key=request.key.encode())
    finally:
        await producer.stop()
    await asyncio.wait_for(peer.held.wait(), timeout=30)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    release.set()

    spawn_service("channels", database_url=database_url, extra=env).wait_ready()

    async def settled():
        events = await read_topics(kafka, (topics.INVOICE_DISPATCHED, topics.DELIVERY_ACKED))
        return events if len(events) >= 2 else None

    events = await eventually(settled, timeout=60, what="dispatched and acked after the restart")
    assert peer.posts == 2 and len(peer.invoices) == 1, "the resend was recognised, not processed again"
    assert sorted(type(e).__name__ for e in events) == ["DeliveryAcked", "InvoiceDispatched"]



async def async_channels(peer, ingest, start_channels):
    """channels with the partner in async mode: its MDN comes later to POST /v1/as2/mdn."""
    port = free_port()
    settings = edi_settings(peer, ingest, mdn_url=f"http://127.0.0.1:{port}/v1/as2/mdn")
    settings["edi"]["partners"]["buyer"]["mdn_mode"] = "async"
    return await start_channels(http_port=port, **settings)


async def test_an_async_mdn_is_checked_and_acks_once(peer, ingest, start_channels, make_dispatch, eventually):
    channels = await async_channels(peer, ingest, start_channels)
    peer.mdn_delay = 0.3
    request = await edi_dispatch(ingest, make_dispatch)
    await channels.publish(request)

    (ack,) = await eventually(lambda: channels.read(topics.DELIVERY_ACKED), what="the async MDN's ack", timeout=60)
    assert (ack.invoice_id, ack.channel, ack.status) == (request.invoice_id, "edi", "MDN")
    (outcome,) = await channels.outcomes()
    assert isinstance(outcome, InvoiceDispatched) and peer.mdn_posts == [200] and len(peer.invoices) == 1
    row = await submission(channels, request.dispatch_id)
    assert (row.state, row.last_status, row.detail["mdn_id"]) == ("acknowledged", "processed", ack.ack_id)

    (headers, mdn, _url), = peer._answers.values()
    mdn_url = f"{channels.host.url}/v1/as2/mdn"
    async with httpx.AsyncClient() as client:
        again = await client.post(mdn_url, content=mdn, headers=headers)
        tampered = await client.post(mdn_url, content=mdn.replace(b"processed", b"processed "), headers=headers)
        garbage = await client.post(mdn_url, content=b"hello", headers={"Content-Type": "text/plain"})
    assert (again.status_code, again.text) == (200, "Already settled.")
    assert tampered.status_code == 400 and "trusted" in tampered.json()["detail"]  # the signature no longer holds
    assert garbage.status_code == 400
    assert len(await channels.read(topics.DELIVERY_ACKED)) == 1


async def test_an_async_error_mdn_fails_the_dispatch_for_good(peer, ingest, start_channels, make_dispatch, outcomes):
    channels = await async_channels(peer, ingest, start_channels)
    peer.reject_next("unexpected-processing-error")
    request = await edi_dispatch(ingest, make_dispatch)
    await channels.publish(request)

    dispatched, failed = await outcomes(channels, 2)
    assert isinstance(dispatched, InvoiceDispatched)  # the partner took it; its MDN said no later
    assert isinstance(failed, DispatchFailed) and failed.permanent and "unexpected-processing-error" in failed.reason
    assert failed.fallback_channels == ["postal"]
    assert (await submission(channels, request.dispatch_id)).state == "rejected"
    assert await channels.read(topics.DELIVERY_ACKED) == []

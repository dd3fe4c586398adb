"""`POST /v1/invoices` and reading invoices back, on a real ingest (PostgreSQL, broker)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from decimal import Decimal

import httpx
from pypdf import PdfReader
from sqlalchemy import select

from parcours_contracts import InvoiceReceived, topics
from parcours_ingest.store.models import IdempotencyKeyRow, InvoiceRow

PROBLEM_JSON = "application/problem+json"


def received(events, number: str) -> list[InvoiceReceived]:
    return [e for e in events if isinstance(e, InvoiceReceived) and e.invoice.number == number]


async def test_accepted_invoice_is_stored_and_announced(ingest, client, acme, make_invoice, read_events, count_rows):
    body = make_invoice("F-2026-0001")
    response = await client.post("/v1/invoices", json=body, headers=acme)

    assert response.status_code == 202, response.text
    accepted = response.json()
    invoice_id = uuid.UUID(accepted["invoice_id"])
    assert accepted == {"invoice_id": str(invoice_id), "status": "received", "number": "F-2026-0001"}

    async with ingest.ctx.sessions() as session:
        row = (await session.execute(select(InvoiceRow))).scalar_one()
    assert (row.id, row.tenant_id, row.number, row.customer_ref, row.has_pdf) == (
        invoice_id, "acme", "F-2026-0001", "CUST-42", False)
    assert row.total_incl_tax == Decimal("144.63")
    assert row.document["lines"][1]["quantity"] == "0.1"  # a JSON number, kept exact

    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: received(es, "F-2026-0001"))
    [event] = received(events, "F-2026-0001")
    assert (event.tenant_id, event.invoice_id, event.key, event.correlation_id) == (
        "acme", invoice_id, str(invoice_id), str(invoice_id))
    summary = event.invoice
    assert (summary.issue_date.isoformat(), summary.due_date.isoformat(), summary.currency) == (
        "2026-11-02", "2026-12-02", "EUR")
    assert (summary.total_excl_tax, summary.total_tax, summary.total_incl_tax) == (
        Decimal("120.60"), Decimal("24.03"), Decimal("144.63"))
    assert (summary.seller_name, summary.buyer_name, summary.customer_ref, summary.has_pdf, summary.source_format) == (
        "ACME SAS", "Dupont SARL", "CUST-42", False, "json")
    assert await count_rows(ingest, InvoiceRow) == 1

    read = await client.get(f"/v1/invoices/{invoice_id}", headers=acme)
    assert read.status_code == 200
    stored = read.json()
    assert stored["invoice_id"] == str(invoice_id) and stored["status"] == "received" and not stored["has_pdf"]
    assert stored["received_at"]
    assert stored["totals"] == {"total_excl_tax": "120.60", "total_tax": "24.03", "total_incl_tax": "144.63"}
    assert stored["buyer"] == {"customer_ref": "CUST-42", "name": "Dupont SARL", "siren": "552100554",
                               "siret": None, "vat_id": None}
    assert [line["description"] for line in stored["lines"]] == ["Consulting", "Stamps", "Envelopes", "Travel"]


async def test_pdf_round_trip_and_incoming_correlation_id(client, acme, make_invoice, read_events, sample_pdf):
    response = await client.post("/v1/invoices", json=make_invoice("F-PDF", with_pdf=True),
                                 headers={**acme, "X-Correlation-ID": "erp-batch-17"})
    assert response.status_code == 202, response.text
    invoice_id = response.json()["invoice_id"]

    pdf = await client.get(f"/v1/invoices/{invoice_id}/pdf", headers=acme)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == sample_pdf
    assert (await client.get(f"/v1/invoices/{invoice_id}", headers=acme)).json()["has_pdf"] is True

    [event] = received(await read_events(topics.INVOICE_RECEIVED, until=lambda es: received(es, "F-PDF")), "F-PDF")
    assert event.invoice.has_pdf is True
    assert event.correlation_id == "erp-batch-17"

    # an invoice sent as data only: its PDF is the Factur-X Parcours prepares (rendered, CII embedded)
    without_pdf = (await client.post("/v1/invoices", json=make_invoice(), headers=acme)).json()["invoice_id"]
    prepared = await client.get(f"/v1/invoices/{without_pdf}/pdf", headers=acme)
    assert prepared.status_code == 200 and prepared.content.startswith(b"%PDF-1.7")
    assert [a.name for a in PdfReader(io.BytesIO(prepared.content)).attachment_list] == ["factur-x.xml"]
    missing = await client.get(f"/v1/invoices/{uuid.uuid4()}/pdf", headers=acme)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM_JSON


async def test_amounts_that_do_not_add_up_are_all_reported_and_change_nothing(
        ingest, client, acme, make_invoice, outbox_size, read_events, count_rows):
    body = make_invoice("F-WRONG")
    body["lines"][1]["line_total_excl_tax"] = "0.31"  # 0.1 × 3 = 0.30
    body["totals"]["total_tax"] = "24.04"  # per-line rounding; per rate it is 24.03
    body["totals"]["total_incl_tax"] = "150"

    response = await client.post("/v1/invoices", json=body, headers=acme)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"].endswith("/arithmetic-error") and problem["status"] == 422
    assert {e["pointer"]: (e["expected"], e["given"]) for e in problem["errors"]} == {
        "/lines/1/line_total_excl_tax": ("0.30", "0.31"),
        "/totals/total_excl_tax": ("120.61", "120.60"),
        "/totals/total_tax": ("24.03", "24.04"),
        "/totals/total_incl_tax": ("144.64", "150"),
    }
    assert "expected 0.30" in problem["errors"][0]["detail"]
    assert await count_rows(ingest, InvoiceRow) == 0
    assert await outbox_size() == 0

    sentinel = await client.post("/v1/invoices", json=make_invoice("F-SENTINEL"), headers=acme)
    assert sentinel.status_code == 202
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: received(es, "F-SENTINEL"))
    assert [e.invoice.number for e in events] == ["F-SENTINEL"]


async def test_schema_errors_point_at_their_fields(ingest, client, acme, make_invoice, count_rows):
    body = make_invoice()
    del body["number"]
    body["currency"] = "euro"
    body["due_date"] = "2026-10-01"
    body["lines"][0]["quantity"] = "-1"
    body["lines"][2]["unit_price"] = "a lot"
    body["buyer"] = {"name": "No reference SARL"}
    body["pdf"] = base64.b64encode(b"<html>not a pdf</html>").decode()

    response = await client.post("/v1/invoices", json=body, headers=acme)

    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM_JSON
    assert {e["pointer"] for e in response.json()["errors"]} == {
        "/number", "/currency", "/due_date", "/lines/0/quantity", "/lines/2/unit_price", "/buyer/customer_ref", "/pdf"}

    no_lines = await client.post("/v1/invoices", json={**make_invoice(), "lines": []}, headers=acme)
    assert [e["pointer"] for e in no_lines.json()["errors"]] == ["/lines"]
    not_an_object = await client.post("/v1/invoices", json=[make_invoice()], headers=acme)
    assert not_an_object.status_code == 422 and not_an_object.json()["errors"][0]["pointer"] == ""
    nan = await client.post("/v1/invoices", content=json.dumps(make_invoice()).replace('"19.99"', "NaN", 1),
                            headers={**acme, "Content-Type": "application/json"})
    assert nan.status_code == 422 and [e["pointer"] for e in nan.json()["errors"]] == ["/lines/3/unit_price"]
    huge = await client.post("/v1/invoices", content=json.dumps(make_invoice()).replace('"19.99"', "9" * 5000, 1),
                             headers={**acme, "Content-Type": "application/json"})
    assert huge.status_code == 422 and [e["pointer"] for e in huge.json()["errors"]] == ["/lines/3/unit_price"]
    long_header = await client.post("/v1/invoices", json=make_invoice(),
                                    headers={**acme, "X-Correlation-ID": "c" * 129, "Idempotency-Key": "k" * 256})
    assert long_header.status_code == 422
    assert {(e.get("in"), e["pointer"]) for e in long_header.json()["errors"]} == {
        ("header", "/X-Correlation-ID"), ("header", "/Idempotency-Key")}
    assert await count_rows(ingest, InvoiceRow) == 0

    openapi = (await client.get("/openapi.json")).json()
    body_schema = openapi["paths"]["/v1/invoices"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/Invoice"}
    assert openapi["components"]["schemas"]["Invoice"]["properties"]["number"]["description"].startswith("BT-1 ")
    assert "BT-131" in openapi["components"]["schemas"]["InvoiceLine"]["properties"]["line_total_excl_tax"]["description"]


async def test_bodies_that_are_not_json_or_too_large_are_refused(run_service, tenant_key, make_invoice, sample_pdf, count_rows):
    ingest = await run_service("ingest", max_body_bytes=4096)
    acme = {"Authorization": f"Bearer {await tenant_key(ingest)}"}
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        malformed = await client.post("/v1/invoices", content=b'{"number": "F-1", ',
                                      headers={**acme, "Content-Type": "application/json"})
        assert malformed.status_code == 400 and malformed.headers["content-type"] == PROBLEM_JSON
        assert malformed.json()["type"].endswith("/malformed-json")
        for content in (b"\xff\xfe\xfa", b"[" * 4000, b""):  # not UTF-8, too deep, empty
            unreadable = await client.post("/v1/invoices", content=content,
                                           headers={**acme, "Content-Type": "application/json"})
            assert unreadable.status_code == 400 and unreadable.headers["content-type"] == PROBLEM_JSON

        as_text = await client.post("/v1/invoices", content=json.dumps(make_invoice()),
                                    headers={**acme, "Content-Type": "text/plain"})
        assert as_text.status_code == 415 and as_text.headers["content-type"] == PROBLEM_JSON

        big = make_invoice(with_pdf=True)
        big["pdf"] = base64.b64encode(sample_pdf + b"0" * 5000).decode()
        declared = await client.post("/v1/invoices", json=big, headers=acme)
        assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM_JSON

        async def chunks():  # no Content-Length: the limit holds on what is actually read
            payload = json.dumps(big).encode()
            for start in range(0, len(payload), 1000):
                yield payload[start:start + 1000]

        streamed = await client.post("/v1/invoices", content=chunks(),
                                     headers={**acme, "Content-Type": "application/json"})
        assert streamed.status_code == 413

        assert (await client.post("/v1/invoices", json=make_invoice(), headers=acme)).status_code == 202
    assert await count_rows(ingest, InvoiceRow) == 1


async def test_missing_or_bad_api_key_is_401(ingest, client, acme, make_invoice, count_rows):
    for headers in ({}, {"Authorization": "Bearer prc_nope_nope"}, {"Authorization": acme["Authorization"][7:]},
                    {"Authorization": "Basic " + acme["Authorization"][7:]}):
        response = await client.post("/v1/invoices", json=make_invoice(), headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get(f"/v1/invoices/{uuid.uuid4()}")).status_code == 401
    assert await count_rows(ingest, InvoiceRow) == 0


async def test_idempotency_key_replays_the_first_response(ingest, client, acme, make_invoice, read_events, count_rows):
    body = make_invoice("F-IDEM")
    headers = {**acme, "Idempotency-Key": "erp-42"}
    first = await client.post("/v1/invoices", json=body, headers=headers)
    reordered = dict(reversed(list(body.items())))  # the same invoice, serialised differently
    again = await client.post("/v1/invoices", json=reordered, headers=headers)

    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await count_rows(ingest, InvoiceRow) == 1

    changed = make_invoice("F-IDEM-2")
    reuse = await client.post("/v1/invoices", json=changed, headers=headers)
    assert reuse.status_code == 422 and reuse.headers["content-type"] == PROBLEM_JSON
    assert reuse.json()["type"].endswith("/idempotency-key-reuse")
    assert await count_rows(ingest, InvoiceRow) == 1

    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: received(es, "F-IDEM"))
    assert [e.invoice.number for e in events] == ["F-IDEM"]


async def test_concurrent_retries_create_one_invoice(ingest, client, acme, make_invoice, tenant_key, read_events, count_rows):
    body = make_invoice("F-RACE")
    headers = {**acme, "Idempotency-Key": "same-request"}
    responses = await asyncio.gather(*(client.post("/v1/invoices", json=body, headers=headers) for _ in range(6)))

    assert {r.status_code for r in responses} == {202}
    assert len({r.text for r in responses}) == 1
    assert await count_rows(ingest, InvoiceRow) == 1
    assert await count_rows(ingest, IdempotencyKeyRow) == 1

    # keys are scoped per tenant: another tenant's identical key is a different request
    other = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='globex', tenant_name='Globex')}",
             "Idempotency-Key": "same-request"}
    assert (await client.post("/v1/invoices", json=body, headers=other)).status_code == 202

    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(received(es, "F-RACE")) >= 2)
    assert sorted(e.tenant_id for e in received(events, "F-RACE")) == ["acme", "globex"]


async def test_duplicate_number_is_409_and_not_published(ingest, client, acme, make_invoice, read_events, count_rows):
    assert (await client.post("/v1/invoices", json=make_invoice("F-DUP"), headers=acme)).status_code == 202
    second = make_invoice("F-DUP")
    second["buyer"]["customer_ref"] = "CUST-OTHER"
    duplicate = await client.post("/v1/invoices", json=second, headers={**acme, "Idempotency-Key": "fresh-key"})

    assert duplicate.status_code == 409 and duplicate.headers["content-type"] == PROBLEM_JSON
    assert duplicate.json()["type"].endswith("/duplicate-invoice-number")
    assert await count_rows(ingest, InvoiceRow) == 1
    assert await count_rows(ingest, IdempotencyKeyRow) == 0

    assert (await client.post("/v1/invoices", json=make_invoice("F-AFTER"), headers=acme)).status_code == 202
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: received(es, "F-AFTER"))
    assert sorted(e.invoice.number for e in events) == ["F-AFTER", "F-DUP"]
    assert received(events, "F-DUP")[0].invoice.customer_ref == "CUST-42"


async def test_tenants_see_only_their_own_invoices(ingest, client, acme, make_invoice, tenant_key):
    invoice_id = (await client.post("/v1/invoices", json=make_invoice("F-A", with_pdf=True), headers=acme)).json()["invoice_id"]
    globex = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='globex', tenant_name='Globex')}"}

    for path in (f"/v1/invoices/{invoice_id}", f"/v1/invoices/{invoice_id}/pdf"):
        foreign = await client.get(path, headers=globex)
        assert foreign.status_code == 404 and foreign.headers["content-type"] == PROBLEM_JSON
        assert (await client.get(path, headers=acme)).status_code == 200
    # the same number is free for another tenant
    assert (await client.post("/v1/invoices", json=make_invoice("F-A"), headers=globex)).status_code == 202

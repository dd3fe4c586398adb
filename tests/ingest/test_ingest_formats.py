"""`POST /v1/invoices` in every format (UBL and CII XML, Factur-X PDF, multipart JSON + PDF) on a
real ingest: stored, announced, readable back; refused precisely when wrong."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import httpx

from parcours_contracts import InvoiceReceived, topics
from parcours_ingest.store.models import InvoicePdfRow, InvoiceRow, InvoiceSourceRow

PROBLEM_JSON = "application/problem+json"
XML = {"Content-Type": "application/xml"}


def received(events, number: str) -> list[InvoiceReceived]:
    return [e for e in events if isinstance(e, InvoiceReceived) and e.invoice.number == number]


async def test_ubl_cii_and_facturx_invoices_are_stored_and_announced(client, acme, make_invoice, documents, read_events):
    ubl, cii, fx = make_invoice("F-UBL"), make_invoice("F-CII"), make_invoice("F-FX")
    fx_xml = documents.cii(fx)
    fx_pdf = documents.facturx(fx_xml)
    posted = {
        "F-UBL": await client.post("/v1/invoices", content=documents.ubl(ubl), headers={**acme, **XML}),
        "F-CII": await client.post("/v1/invoices", content=documents.cii(cii),
                                   headers={**acme, "Content-Type": "text/xml; charset=utf-8"}),
        "F-FX": await client.post("/v1/invoices", content=fx_pdf, headers={**acme, "Content-Type": "application/pdf"}),
    }
    assert {n: r.status_code for n, r in posted.items()} == {"F-UBL": 202, "F-CII": 202, "F-FX": 202}, \
        {n: r.text for n, r in posted.items()}
    ids = {n: r.json()["invoice_id"] for n, r in posted.items()}

    json_twin = (await client.post("/v1/invoices", json=make_invoice("F-JSON"), headers=acme)).json()["invoice_id"]
    twin = (await client.get(f"/v1/invoices/{json_twin}", headers=acme)).json()
    for number, expected_format in (("F-UBL", "ubl"), ("F-CII", "cii"), ("F-FX", "factur-x")):
        stored = (await client.get(f"/v1/invoices/{ids[number]}", headers=acme)).json()
        assert stored["source_format"] == expected_format
        assert (stored["seller"], stored["buyer"], stored["lines"]) == (twin["seller"], twin["buyer"], twin["lines"])
        assert stored["totals"]["total_incl_tax"] == "144.63" and stored["due_date"] == "2026-12-02"
        assert [v["vat_rate"] for v in stored["vat_breakdown"]] == ["20", "5.5"]

    source = await client.get(f"/v1/invoices/{ids['F-UBL']}/source", headers=acme)
    assert source.status_code == 200 and source.content == documents.ubl(ubl)
    assert source.headers["content-type"].startswith("application/xml")
    assert (await client.get(f"/v1/invoices/{ids['F-FX']}/source", headers=acme)).content == fx_xml
    assert (await client.get(f"/v1/invoices/{ids['F-FX']}/pdf", headers=acme)).content == fx_pdf
    no_source = await client.get(f"/v1/invoices/{json_twin}/source", headers=acme)
    assert no_source.status_code == 404 and no_source.headers["content-type"] == PROBLEM_JSON

    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: all(received(es, n) for n in ids))
    summaries = {n: received(events, n)[0].invoice for n in ids}
    assert {n: (s.customer_ref, str(s.total_incl_tax), s.has_pdf, s.source_format) for n, s in summaries.items()} == {
        "F-UBL": ("CUST-42", "144.63", False, "ubl"), "F-CII": ("CUST-42", "144.63", False, "cii"),
        "F-FX": ("CUST-42", "144.63", True, "factur-x")}


async def test_a_ubl_credit_note_is_received_as_type_381(client, acme, make_invoice, documents, read_events):
    body = {**make_invoice("AV-2026-1"), "type_code": "381"}
    del body["due_date"]
    response = await client.post("/v1/invoices", content=documents.ubl(body), headers={**acme, **XML})
    assert response.status_code == 202, response.text
    stored = (await client.get(f"/v1/invoices/{response.json()['invoice_id']}", headers=acme)).json()
    assert (stored["type_code"], stored["due_date"]) == ("381", stored["issue_date"])

    # Downstream (dunning) must know it is a credit note: the type travels in the event.
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: received(es, "AV-2026-1"))
    assert [e.invoice.type_code for e in received(events, "AV-2026-1")] == ["381"]
    plain = await client.post("/v1/invoices", content=documents.ubl(make_invoice("F-2026-380")), headers={**acme, **XML})
    assert plain.status_code == 202, plain.text
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: received(es, "F-2026-380"))
    assert [e.invoice.type_code for e in received(events, "F-2026-380")] == ["380"]


async def test_xml_errors_point_into_the_document(ingest, client, acme, make_invoice, documents, count_rows):
    body = make_invoice()
    del body["due_date"]
    missing = await client.post("/v1/invoices", content=documents.ubl(body), headers={**acme, **XML})
    assert missing.status_code == 422 and missing.headers["content-type"] == PROBLEM_JSON
    assert missing.json()["type"].endswith("/missing-business-terms")
    assert [(e["pointer"], e["field"], e["code"]) for e in missing.json()["errors"]] == [
        ("/Invoice/cbc:DueDate", "/due_date", "missing")]

    wrong = make_invoice()
    wrong["lines"][1]["line_total_excl_tax"] = "0.31"
    wrong["totals"]["total_incl_tax"] = "150.00"
    sums = await client.post("/v1/invoices", content=documents.cii(wrong), headers={**acme, **XML})
    assert sums.status_code == 422 and sums.json()["type"].endswith("/arithmetic-error")
    settlement = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
    errors = {e["pointer"]: (e["field"], e["expected"], e["given"]) for e in sums.json()["errors"]}
    assert errors[f"{settlement}/ram:IncludedSupplyChainTradeLineItem[2]/ram:SpecifiedLineTradeSettlement"
                  "/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"] == (
        "/lines/1/line_total_excl_tax", "0.30", "0.31")
    assert errors[f"{settlement}/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
                  "/ram:GrandTotalAmount"] == ("/totals/total_incl_tax", "144.63", "150.00")

    bad_currency = documents.ubl(make_invoice()).replace(b">EUR</cbc:DocumentCurrencyCode>",
                                                         b">euro</cbc:DocumentCurrencyCode>")
    schema = await client.post("/v1/invoices", content=bad_currency, headers={**acme, **XML})
    assert schema.status_code == 422
    assert [(e["pointer"], e["field"]) for e in schema.json()["errors"]] == [
        ("/Invoice/cbc:DocumentCurrencyCode", "/currency")]

    not_xsd = documents.ubl(make_invoice()).replace(b"<cbc:IssueDate>", b"<cbc:Nonsense/><cbc:IssueDate>")
    xsd = await client.post("/v1/invoices", content=not_xsd, headers={**acme, **XML})
    assert xsd.status_code == 422 and xsd.json()["type"].endswith("/xsd-invalid")
    [error] = xsd.json()["errors"]
    assert error["code"] == "xsd" and "Nonsense" in error["detail"] and error["line"] == 2
    assert await count_rows(ingest, InvoiceRow) == 0


async def test_identifier_checksums_and_dates(run_service, tenant_key, make_invoice, documents, count_rows):
    ingest = await run_service("ingest", identifier_checksums=True)
    acme = {"Authorization": f"Bearer {await tenant_key(ingest)}"}
    body = make_invoice()
    body["seller"]["siren"] = "732829321"
    body["issue_date"] = (date.today() + timedelta(days=3)).isoformat()
    body["due_date"] = (date.today() + timedelta(days=33)).isoformat()
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        as_json = await client.post("/v1/invoices", json=body, headers=acme)
        assert as_json.status_code == 422 and as_json.json()["type"].endswith("/business-rule-violation")
        assert {(e["pointer"], e["code"]) for e in as_json.json()["errors"]} == {
            ("/seller/siren", "invalid-siren"), ("/issue_date", "issue-date-in-future")}
        as_xml = await client.post("/v1/invoices", content=documents.ubl(body), headers={**acme, **XML})
        assert {(e["pointer"], e["field"]) for e in as_xml.json()["errors"]} == {
            ("/Invoice/cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID", "/seller/siren"),
            ("/Invoice/cbc:IssueDate", "/issue_date")}
        assert (await client.post("/v1/invoices", json=make_invoice(), headers=acme)).status_code == 202
    assert await count_rows(ingest, InvoiceRow) == 1


async def test_pdf_without_xml_needs_multipart_json(ingest, client, acme, make_invoice, documents, count_rows):
    plain = documents.blank_pdf(2)
    alone = await client.post("/v1/invoices", content=plain, headers={**acme, "Content-Type": "application/pdf"})
    assert alone.status_code == 422 and alone.json()["type"].endswith("/pdf-without-invoice-data")
    assert "multipart/form-data" in alone.json()["detail"]

    body = make_invoice("F-MULTI")
    together = await client.post("/v1/invoices", headers=acme, files={
        "invoice": ("invoice.json", json.dumps(body), "application/json"), "pdf": ("F-MULTI.pdf", plain, "application/pdf")})
    assert together.status_code == 202, together.text
    invoice_id = together.json()["invoice_id"]
    assert (await client.get(f"/v1/invoices/{invoice_id}/pdf", headers=acme)).content == plain
    assert (await client.get(f"/v1/invoices/{invoice_id}", headers=acme)).json()["source_format"] == "json"

    twice = await client.post("/v1/invoices", headers=acme, files={
        "invoice": (None, json.dumps(make_invoice(with_pdf=True))), "pdf": ("x.pdf", plain, "application/pdf")})
    assert twice.status_code == 422 and [e["pointer"] for e in twice.json()["errors"]] == ["/pdf"]
    assert await count_rows(ingest, InvoicePdfRow) == 1


async def test_duplicates_are_409_with_a_link_and_xml_retries_replay(ingest, client, acme, make_invoice, documents,
                                                                    count_rows):
    first = await client.post("/v1/invoices", json=make_invoice("F-TWICE"), headers=acme)
    existing = first.json()["invoice_id"]
    for duplicate in (await client.post("/v1/invoices", json=make_invoice("F-TWICE"), headers=acme),
                      await client.post("/v1/invoices", content=documents.ubl(make_invoice("F-TWICE")),
                                        headers={**acme, **XML})):
        assert duplicate.status_code == 409 and duplicate.headers["content-type"] == PROBLEM_JSON
        problem = duplicate.json()
        assert problem["type"].endswith("/duplicate-invoice-number")
        assert (problem["existing_invoice_id"], problem["existing_invoice"]) == (existing, f"/v1/invoices/{existing}")
        assert duplicate.headers["location"] == f"/v1/invoices/{existing}"
        assert (await client.get(problem["existing_invoice"], headers=acme)).json()["number"] == "F-TWICE"
    assert [e["pointer"] for e in duplicate.json()["errors"]] == ["/Invoice/cbc:ID"]

    xml = documents.cii(make_invoice("F-XML-IDEM"))
    headers = {**acme, **XML, "Idempotency-Key": f"xml-{uuid.uuid4()}"}
    once, again = [await client.post("/v1/invoices", content=xml, headers=headers) for _ in range(2)]
    assert once.status_code == again.status_code == 202 and once.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post("/v1/invoices", content=documents.cii(make_invoice("F-XML-OTHER")), headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reuse")
    assert await count_rows(ingest, InvoiceRow) == 2
    assert await count_rows(ingest, InvoiceSourceRow) == 1

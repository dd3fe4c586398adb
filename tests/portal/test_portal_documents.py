"""The received XML offered by the console, on the real ingest: an invoice received as UBL carries
its source format in InvoiceSummary, and the console hands its XML over (ingest's document-reader
token); an invoice received as JSON offers no XML."""

from __future__ import annotations

import copy

import httpx
import pytest

from tests.ingest.conftest import VALID_INVOICE, ubl_document

TOKEN = "portal-test-document-reader"


@pytest.fixture
async def ingest(run_service):
    return await run_service("ingest", document_reader_token=TOKEN)


@pytest.fixture
async def portal(run_service, ingest):
    return await run_service("portal", ingest_url=ingest.url, ingest_document_token=TOKEN)


async def test_the_xml_an_invoice_was_received_as(ingest, portal, tenant_key, signed_in, page_shows):
    key = {"Authorization": f"Bearer {await tenant_key(ingest, 'acme')}"}
    as_xml, as_json = copy.deepcopy(VALID_INVOICE), copy.deepcopy(VALID_INVOICE)
    as_xml["number"], as_json["number"] = "F-AS-UBL", "F-AS-JSON"
    xml = ubl_document(as_xml)
    async with httpx.AsyncClient(base_url=ingest.url, headers=key, timeout=30) as http:
        posted = await http.post("/v1/invoices", content=xml, headers={"Content-Type": "application/xml"})
        plain = await http.post("/v1/invoices", json=as_json)
    assert posted.status_code == plain.status_code == 202, (posted.text, plain.text)

    manager = await signed_in("cm@acme.example")
    xml_id, json_id = posted.json()["invoice_id"], plain.json()["invoice_id"]
    page = await page_shows(manager, f"/console/invoices/{xml_id}", "F-AS-UBL", "document.xml")
    download = await manager.get(f"/console/invoices/{xml_id}/document.xml")
    assert download.status_code == 200 and download.content == xml
    assert download.headers["content-type"].startswith("application/xml") and "document.pdf" in page.text
    other = await page_shows(manager, f"/console/invoices/{json_id}", "F-AS-JSON")
    assert "document.pdf" in other.text and "document.xml" not in other.text

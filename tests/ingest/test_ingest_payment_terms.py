"""BT-20 Payment terms: optional text sent in JSON, read from UBL (`cac:PaymentTerms/cbc:Note`) and CII
(`ram:SpecifiedTradePaymentTerms/ram:Description`), written back in both (XSD-valid), and printed on the
PDF Parcours renders; an invoice without terms reads back without the field."""

from __future__ import annotations

import io

from pypdf import PdfReader

from parcours_ingest.domain.cii_out import cii_invoice
from parcours_ingest.domain.documents.cii import read_cii
from parcours_ingest.domain.documents.schemas import xsd_issues
from parcours_ingest.domain.documents.ubl import read_ubl
from parcours_ingest.domain.documents.xml import parse_xml
from parcours_ingest.domain.invoice import InvoiceContent
from parcours_ingest.domain.render_pdf import render_invoice
from parcours_ingest.domain.ubl_out import ubl_invoice

TERMS = "30 jours fin de mois, pas d'escompte pour paiement anticipé"


def with_terms(body: dict) -> dict:
    body["payment_terms"] = TERMS
    return body


def test_payment_terms_go_out_in_ubl_and_cii_and_come_back_in(make_invoice):
    invoice = InvoiceContent.model_validate(with_terms(make_invoice("F-TERMS")))
    for write, read in ((ubl_invoice, read_ubl), (cii_invoice, read_cii)):
        root = parse_xml(write(invoice))
        assert xsd_issues(root) == []
        assert read(root).payload["payment_terms"] == TERMS
    plain = InvoiceContent.model_validate(make_invoice("F-PLAIN"))
    assert "payment_terms" not in read_ubl(parse_xml(ubl_invoice(plain))).payload
    assert "payment_terms" not in read_cii(parse_xml(cii_invoice(plain))).payload


def test_the_rendered_pdf_prints_the_terms(make_invoice):
    invoice = InvoiceContent.model_validate(with_terms(make_invoice("F-TERMS")))
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(render_invoice(invoice))).pages)
    assert "30 jours fin de mois" in " ".join(text.split())


async def test_json_payment_terms_are_stored_and_read_back(client, acme, make_invoice):
    with_ = await client.post("/v1/invoices", json=with_terms(make_invoice("F-T1")), headers=acme)
    without = await client.post("/v1/invoices", json=make_invoice("F-T2"), headers=acme)
    assert with_.status_code == without.status_code == 202
    assert (await client.get(f"/v1/invoices/{with_.json()['invoice_id']}", headers=acme)).json()["payment_terms"] == TERMS
    assert "payment_terms" not in (await client.get(f"/v1/invoices/{without.json()['invoice_id']}", headers=acme)).json()
    too_long = await client.post("/v1/invoices", headers=acme, json={**make_invoice("F-T3"), "payment_terms": "x" * 1001})
    assert too_long.status_code == 422 and [e["pointer"] for e in too_long.json()["errors"]] == ["/payment_terms"]

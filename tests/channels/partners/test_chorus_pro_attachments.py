"""chorus_pro attachments: the annexes added to an invoice at ingest go to Chorus Pro inside the
deposited file (embedded in a CII, attached to the Factur-X ingest prepares, or, for a Factur-X
received as such, inside its CII with the PDF), and what Chorus Pro would refuse fails before any
deposit, for good, with every reason."""

from __future__ import annotations

import base64

import httpx
from facturx import xml_check_xsd
from lxml import etree

from parcours_channels.domain.attachments import AttachedFile, with_attachments
from parcours_contracts import DispatchFailed, InvoiceDispatched
from tests.channels.partners.conftest import DOCUMENTS

CSV = b"date;hours\n2026-11-02;7.5\n"


async def add_annex(ingest, invoice_id, filename: str, content: bytes, media_type: str) -> None:
    async with httpx.AsyncClient(base_url=ingest.host.url, timeout=60) as client:
        response = await client.post(f"/v1/invoices/{invoice_id}/annexes", params={"filename": filename},
                                     content=content, headers={"Authorization": f"Bearer {ingest.keys['acme']}",
                                                               "Content-Type": media_type})
    assert response.status_code == 201, response.text


async def test_annexes_travel_inside_the_deposited_file(outcomes, ingest, chorus, start_channels, partner_dispatch):
    timesheet = DOCUMENTS.text_pdf("TIMESHEET")
    invoices = {kind: await ingest.post(kind=kind) for kind in ("cii", "json", "facturx")}
    for invoice_id, _ in invoices.values():
        await add_annex(ingest, invoice_id, "detail.csv", CSV, "text/csv")
        await add_annex(ingest, invoice_id, "timesheet.pdf", timesheet, "application/pdf")
    channels = await start_channels()
    await channels.publish(*(partner_dispatch(*invoice, channel="chorus_pro", has_pdf=kind == "facturx")
                             for kind, invoice in invoices.items()))
    assert {type(e) for e in await outcomes(channels, 3)} == {InvoiceDispatched}
    [cii], [data], [facturx] = (chorus.deposits_of(invoices[kind][1]) for kind in ("cii", "json", "facturx"))

    assert cii.syntax == "IN_DP_E1_CII_16B" and cii.attachments == [("detail.csv", CSV), ("timesheet.pdf", timesheet)]
    # an invoice sent as data: ingest's Factur-X, the PDF annex merged into its pages, the CSV attached
    assert data.syntax == "IN_DP_E2_CII_FACTURX" and data.attachments == [("detail.csv", CSV)]
    # a Factur-X served as received: its CII carries the PDF and both annexes
    assert facturx.syntax == "IN_DP_E1_CII_16B" and facturx.file_name.endswith(".xml")
    names = [name for name, _ in facturx.attachments]
    assert names[0].endswith(".pdf") and len(names[0]) <= 50 and names[1:] == ["detail.csv", "timesheet.pdf"]
    assert facturx.attachments[0][1].startswith(b"%PDF")


async def test_annexes_chorus_pro_would_refuse_fail_for_good_before_depositing(
        outcomes, ingest, chorus, start_channels, partner_dispatch):
    invoice_id, number = await ingest.post(kind="cii")
    await add_annex(ingest, invoice_id, "bordereau-de-livraison-du-mois-de-novembre-2026-site-nord.pdf",
                    DOCUMENTS.text_pdf("BL"), "application/pdf")
    await add_annex(ingest, invoice_id, "outil.exe", b"MZ\x90\x00", "application/octet-stream")
    await add_annex(ingest, invoice_id, "scan.tif", b"\x00" * (10 * 1024 * 1024 + 1), "image/tiff")
    channels = await start_channels()
    await channels.publish(partner_dispatch(invoice_id, number, channel="chorus_pro"))

    [failure] = await outcomes(channels)
    assert isinstance(failure, DispatchFailed) and failure.permanent and failure.fallback_channels == ["email_link"]
    assert "is longer than 50 characters" in failure.reason
    assert "extension 'exe' is not accepted by Chorus Pro" in failure.reason
    assert "'scan.tif' is 10485761 bytes, over Chorus Pro's 10485760 per file" in failure.reason
    assert chorus.deposits == 0 and chorus.calls.count("/cpro/factures/v1/deposer/flux") == 0


def test_embedded_annexes_keep_the_cii_valid_and_the_ubl_in_schema_order():
    body = {**DOCUMENTS.VALID_INVOICE, "number": "F-ATT-1"}
    files = [AttachedFile("detail.csv", "text/csv", CSV), AttachedFile("plan.png", "image/png", b"\x89PNG")]
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    cii = with_attachments(etree.fromstring(DOCUMENTS.cii_document(body), parser), "cii", files)
    xml_check_xsd(cii, flavor="factur-x", level="en16931")  # raises when the schema refuses it
    binaries = etree.fromstring(cii).xpath("//*[local-name()='AttachmentBinaryObject']")
    assert [(b.get("filename"), base64.b64decode(b.text)) for b in binaries] == [(f.filename, f.content) for f in files]

    ubl = etree.fromstring(with_attachments(etree.fromstring(DOCUMENTS.ubl_document(body), parser), "ubl", files))
    names = [etree.QName(child).localname for child in ubl]
    assert names.index("AdditionalDocumentReference") < names.index("AccountingSupplierParty")
    assert names.count("AdditionalDocumentReference") == 2

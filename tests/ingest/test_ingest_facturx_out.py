"""Outgoing documents: CGV stored per tenant through the API and inserted at their position, annexes
merged and supporting files attached, all before the CII is embedded; the Factur-X PDF (PDF/A-3)
re-ingested by our own POST /v1/invoices passes XSD and schematron; UBL and CII routes."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import facturx as facturx_library
import httpx
import pypdfium2 as pdfium
from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.annotations import Link
from pypdf.generic import NameObject
from reportlab.pdfgen import canvas

from parcours_ingest.domain import schematron
from parcours_ingest.domain.documents.schemas import xsd_issues
from parcours_ingest.domain.documents.xml import parse_xml
from parcours_ingest.domain.facturx_out import Attachment, Composition, Embedding, Insert, compose, facturx_document
from parcours_ingest.domain.pdf_objects import part_of

PDF = {"Content-Type": "application/pdf"}


def pdf_saying(*pages: str) -> bytes:
    out = io.BytesIO()
    document = canvas.Canvas(out)
    for text in pages:
        document.drawString(72, 720, text)
        document.showPage()
    document.save()
    return out.getvalue()


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text().strip() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_cgv_goes_where_configured_and_annexes_after():
    invoice = pdf_saying("invoice 1", "invoice 2")
    cgv = pdf_saying("CGV a", "CGV b")
    for after_page, expected in ((0, ["CGV a", "CGV b", "invoice 1", "invoice 2"]),
                                 (1, ["invoice 1", "CGV a", "CGV b", "invoice 2"]),
                                 (None, ["invoice 1", "invoice 2", "CGV a", "CGV b"]),
                                 (99, ["invoice 1", "invoice 2", "CGV a", "CGV b"])):
        composed = compose(Composition(invoice, cgv=Insert(cgv, after_page), annexes=[pdf_saying("annex")]))
        assert page_texts(composed) == expected + ["annex"]
        assert "/OutputIntents" in PdfReader(io.BytesIO(composed)).trailer["/Root"]


def test_our_embedding_is_read_by_the_facturx_library_with_pdfa3_metadata(make_invoice, documents):
    xml = documents.cii(make_invoice("F-2026-0007"))
    at = datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc)
    embedding = Embedding(xml, language="en", attachments=[Attachment("hours.csv", b"a;b\n", "timesheet")],
                          title="INVOICE No. F-2026-0007 <&>", author="ACME SAS", at=at)
    pdf = facturx_document(Composition(pdf_saying("invoice"), cgv=Insert(pdf_saying("CGV"), 0)), embedding)
    assert pdf.startswith(b"%PDF-1.7")
    filename, extracted = facturx_library.get_xml_from_pdf(io.BytesIO(pdf), check_xsd=True)
    assert (filename, extracted) == ("factur-x.xml", xml)
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    specs = {spec.get_object()["/F"]: spec.get_object() for spec in root["/AF"]}
    assert {name: str(spec["/AFRelationship"]) for name, spec in specs.items()} == {
        "factur-x.xml": "/Data", "hours.csv": "/Supplement"}
    assert specs["factur-x.xml"]["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    assert reader.trailer["/ID"][0] == reader.trailer["/ID"][1] and len(reader.trailer["/ID"][0]) == 16
    assert (str(root["/Lang"]), str(root["/OutputIntents"][0].get_object()["/S"])) == ("en", "/GTS_PDFA1")
    assert page_texts(pdf) == ["CGV", "invoice"]
    xmp = etree.fromstring(root["/Metadata"].get_object().get_data().split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    ns = {"fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#", "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
          "dc": "http://purl.org/dc/elements/1.1/", "xmp": "http://ns.adobe.com/xap/1.0/",
          "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
    assert xmp.findtext(".//pdfaid:part", namespaces=ns) == "3"
    assert xmp.findtext(".//fx:ConformanceLevel", namespaces=ns) == "EN 16931"
    assert xmp.findtext(".//fx:DocumentFileName", namespaces=ns) == "factur-x.xml"
    assert xmp.findtext(".//pdfaSchema:namespaceURI", namespaces=ns) == ns["fx"]
    # the Info dictionary says what the XMP says
    info = reader.metadata
    assert xmp.findtext(".//dc:title/rdf:Alt/rdf:li", namespaces=ns) == info.title == "INVOICE No. F-2026-0007 <&>"
    assert xmp.findtext(".//xmp:CreateDate", namespaces=ns) == "2026-11-28T09:30:00+00:00"
    assert info["/CreationDate"] == "D:20261128093000+00'00'"


def assert_valid(xml: bytes, syntax: str) -> None:
    root = parse_xml(xml)
    assert xsd_issues(root) == []
    assert schematron.violations(root, xml, syntax) == []


async def test_data_only_invoice_becomes_a_facturx_that_we_accept_back(run_service, tenant_key, make_invoice, tmp_path):
    ingest = await run_service("ingest", blob_store_url=f"file://{tmp_path / 'blobs'}")
    acme = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='acme')}"}
    globex = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='globex', tenant_name='Globex')}"}
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
        cgv = await client.put("/v1/cgv", params={"after_page": 0, "filename": "cgv.pdf"},
                               content=pdf_saying("CONDITIONS GENERALES"), headers={**acme, **PDF})
        assert cgv.status_code == 200, cgv.text
        assert (cgv.json()["pages"], cgv.json()["after_page"], cgv.json()["group"]) == (1, 0, "")
        assert [c["sha256"] for c in (await client.get("/v1/cgv", headers=acme)).json()] == [cgv.json()["sha256"]]
        assert (await client.get("/v1/cgv", headers=globex)).json() == []  # per tenant
        not_pdf = await client.put("/v1/cgv", content=b"hello", headers={**acme, **PDF})
        assert not_pdf.status_code == 422 and not_pdf.json()["type"].endswith("/not-a-pdf")

        body = make_invoice("F-2026-0100")
        body["seller"]["address"] = {"line1": "1 rue du Port", "postcode": "13002", "city": "Marseille"}
        invoice_id = (await client.post("/v1/invoices", json=body, headers=acme)).json()["invoice_id"]
        annex = await client.post(f"/v1/invoices/{invoice_id}/annexes", params={"filename": "timesheet.pdf"},
                                  content=pdf_saying("ANNEX timesheet"), headers={**acme, **PDF})
        assert annex.status_code == 201 and annex.json()["merged"] is True
        support = await client.post(f"/v1/invoices/{invoice_id}/annexes", params={"filename": "detail.csv"},
                                    content=b"day;hours\n1;7\n", headers={**acme, "Content-Type": "text/csv"})
        assert support.status_code == 201 and support.json()["merged"] is False
        assert (await client.post(f"/v1/invoices/{invoice_id}/annexes", params={"filename": "x.csv"},
                                  content=b"x", headers={**globex, "Content-Type": "text/csv"})).status_code == 404

        response = await client.get(f"/v1/invoices/{invoice_id}/pdf", headers=acme)
        assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
        facturx = response.content
        reader = PdfReader(io.BytesIO(facturx))
        texts = [page.extract_text() for page in reader.pages]
        assert "CONDITIONS GENERALES" in texts[0] and "FACTURE N° F-2026-0100" in texts[1]
        assert "ANNEX timesheet" in texts[-1]
        attachments = {a.name: a.content for a in reader.attachment_list}
        assert set(attachments) == {"factur-x.xml", "detail.csv"} and attachments["detail.csv"] == b"day;hours\n1;7\n"
        assert b"pdfaid:part" in facturx and b"GTS_PDFA1" in facturx  # PDF/A-3 metadata and output intent
        assert_valid(attachments["factur-x.xml"], "cii")

        # round trip: another tenant receives our Factur-X through the front door, XSD + schematron included
        back = await client.post("/v1/invoices", content=facturx, headers={**globex, **PDF})
        assert back.status_code == 202, back.text
        received = (await client.get(f"/v1/invoices/{back.json()['invoice_id']}", headers=globex)).json()
        assert (received["number"], received["source_format"], received["totals"]["total_incl_tax"]) == (
            "F-2026-0100", "factur-x", "144.63")

        english = await client.get(f"/v1/invoices/{invoice_id}/facturx", params={"lang": "en"}, headers=acme)
        assert "INVOICE No. F-2026-0100" in PdfReader(io.BytesIO(english.content)).pages[1].extract_text()

        for syntax in ("ubl", "cii"):
            xml = await client.get(f"/v1/invoices/{invoice_id}/{syntax}", headers=acme)
            assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
            assert_valid(xml.content, syntax)
        assert (await client.get(f"/v1/invoices/{invoice_id}/ubl", headers=globex)).status_code == 404
    # the CGV, the annex and the supporting file are blobs of tenant acme, by their SHA-256
    stored = {p.name for p in (tmp_path / "blobs" / "acme").rglob("*") if p.is_file()}
    assert {cgv.json()["sha256"], annex.json()["sha256"], support.json()["sha256"]} <= stored


def inherited_pages(*texts: str) -> bytes:
    """A PDF whose pages take their resources and size from the page tree (inherited), the second page
    linking to the first."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_saying(*texts))))
    root = writer._root_object["/Pages"].get_object()
    first = writer.pages[0]
    for key in ("/Resources", "/MediaBox"):
        root[NameObject(key)] = first[key]
        for page in writer.pages:
            del page[key]
    writer.add_annotation(1, Link(rect=(72, 700, 200, 730), target_page_index=0))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_inserted_pages_keep_what_they_inherited_and_are_read_once_per_process():
    cgv = inherited_pages("CGV one", "CGV two")
    assert cgv.count(b"/Resources") == cgv.count(b"/MediaBox") == 1  # on the page tree only: really inherited
    composed = compose(Composition(pdf_saying("invoice"), cgv=Insert(cgv, None)))
    reader = PdfReader(io.BytesIO(composed))
    assert page_texts(composed) == ["invoice", "CGV one", "CGV two"]
    root_pages = reader.trailer["/Root"]["/Pages"]
    for page in reader.pages:
        page = page.get_object()
        assert "/Resources" in page and "/MediaBox" in page and page["/Parent"] == root_pages
    link = reader.pages[2]["/Annots"][0].get_object()
    assert link["/Dest"][0] == reader.pages[1].indirect_reference  # the link follows its page
    document = pdfium.PdfDocument(composed)
    assert [document[i].get_textpage().get_text_range().strip() for i in range(3)] == ["invoice", "CGV one", "CGV two"]
    assert part_of(cgv) is part_of(cgv)  # a tenant's CGV is parsed once
    one_off = pdf_saying("sent with its invoice")
    assert part_of(one_off, keep=False) is not part_of(one_off, keep=False)

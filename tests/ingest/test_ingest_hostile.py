"""Hostile bodies on `POST /v1/invoices`: each one a clear 4xx problem+json, nothing stored,
nothing published, and the service still healthy and accepting a valid invoice afterwards."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from pypdf import PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, TextStringObject

from parcours_contracts import InvoiceReceived, topics
from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.domain.documents.pdf import PdfLimits, inspect_pdf
from parcours_ingest.domain.documents.schemas import xsd_issues
from parcours_ingest.domain.documents.xml import parse_xml, syntax_of
from parcours_ingest.store.models import InvoicePdfRow, InvoiceRow, InvoiceSourceRow

PROBLEM_JSON = "application/problem+json"
MAX_BODY = 12 * 1024 * 1024
MAX_PAGES = 3
UBL_ROOT = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">'


def dtd(declarations: str, body: str = "<r>&x;</r>") -> bytes:
    return f'<?xml version="1.0"?>\n<!DOCTYPE r [{declarations}]>\n{body}'.encode()


def laughs() -> bytes:
    entities = '<!ENTITY a0 "ha">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    return dtd(entities, "<r>&a9;</r>")


def written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with(change: Callable[[PdfWriter], None], pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    change(writer)
    return written(writer)


def javascript(writer: PdfWriter) -> None:
    writer.add_open_action(JavaScript("app.alert('hi');"))


def launch_link(writer: PdfWriter) -> None:
    action = DictionaryObject({NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("calc.exe")})
    link = DictionaryObject({NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
                             NameObject("/Rect"): ArrayObject([NumberObject(0)] * 4), NameObject("/A"): action})
    writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(link)])


def attach(name: str, content: bytes, *, inflate_to: int | None = None) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        writer.add_attachment(name, content)
        if inflate_to:  # a zip bomb: a few KB that inflate to `inflate_to` bytes
            for index, obj in enumerate(writer._objects):
                if obj is not None and hasattr(obj, "get") and obj.get("/Type") == "/EmbeddedFile":
                    obj.set_data(b"\0" * inflate_to)
                    writer._objects[index] = obj.flate_encode()
    return change


def encrypted(writer: PdfWriter) -> None:
    writer.encrypt("secret", algorithm="RC4-128")


def multipart(parts: dict[str, tuple[str, bytes, str]], boundary: str = "b0undary") -> tuple[bytes, str]:
    chunks = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
              f"Content-Type: {media}\r\n\r\n".encode() + data + b"\r\n" for name, (filename, data, media) in parts.items()]
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Hostile:
    name: str
    content_type: str | None
    build: Callable[["SimpleDocs"], bytes]
    status: int
    slug: str | None = None


def valid_json(d: "SimpleDocs") -> bytes:
    return json.dumps(d.invoice).encode()


HOSTILE = [
    # XML: DTDs in every shape are refused before any parsing
    Hostile("xxe-file", "application/xml", lambda d: dtd('<!ENTITY x SYSTEM "file:///etc/passwd">'), 422, "unsafe-xml"),
    Hostile("xxe-network", "application/xml", lambda d: dtd('<!ENTITY x SYSTEM "http://127.0.0.1:9/x">'), 422, "unsafe-xml"),
    Hostile("xxe-in-ubl", "application/xml", lambda d: d.ubl.replace(
        b"<?xml version='1.0' encoding='UTF-8'?>", b'<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY x SYSTEM '
        b'"file:///etc/hostname">]>').replace(b">CUST-42<", b">&x;<"), 422, "unsafe-xml"),
    Hostile("billion-laughs", "application/xml", lambda d: laughs(), 422, "unsafe-xml"),
    Hostile("quadratic-blowup", "application/xml",
            lambda d: dtd(f'<!ENTITY x "{"a" * 50_000}">', "<r>" + "&x;" * 20_000 + "</r>"), 422, "unsafe-xml"),
    Hostile("parameter-entity", "application/xml",
            lambda d: dtd('<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;', "<r/>"), 422, "unsafe-xml"),
    Hostile("external-dtd", "application/xml",
            lambda d: b'<?xml version="1.0"?><!DOCTYPE Invoice SYSTEM "http://127.0.0.1:9/ubl.dtd">' + d.ubl[38:],
            422, "unsafe-xml"),
    Hostile("dtd-after-bom", "text/xml", lambda d: b"\xef\xbb\xbf" + laughs(), 422, "unsafe-xml"),
    Hostile("nested-201-deep", "application/xml", lambda d: UBL_ROOT + b"<a>" * 200 + b"</a>" * 200 + b"</Invoice>",
            422, "unsafe-xml"),
    Hostile("nested-5000-deep", "application/xml", lambda d: b"<a>" * 5000 + b"</a>" * 5000, 422, "unsafe-xml"),
    Hostile("huge-text-node", "application/xml",
            lambda d: UBL_ROOT + b"<cbc:Note xmlns:cbc='x'>" + b"A" * 11_000_000 + b"</cbc:Note></Invoice>",
            400, "malformed-xml"),
    Hostile("broken-utf8", "application/xml", lambda d: d.ubl.replace(b"Dupont SARL", b"Dupont \xff\xfe SARL"),
            400, "malformed-xml"),
    Hostile("latin1-declared", "application/xml", lambda d: d.ubl.replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'"),
            422, "unsafe-xml"),
    Hostile("utf16", "application/xml", lambda d: d.ubl.decode().replace("UTF-8", "UTF-16").encode("utf-16"),
            422, "unsafe-xml"),
    Hostile("not-xml", "application/xml", lambda d: b"hello, invoice", 400, "malformed-xml"),
    Hostile("empty-xml", "application/xml", lambda d: b"", 400, "malformed-xml"),
    Hostile("truncated-xml", "application/xml", lambda d: d.ubl[: len(d.ubl) // 2], 400, "malformed-xml"),
    Hostile("undefined-entity", "application/xml", lambda d: d.ubl.replace(b">CUST-42<", b">&boom;<"),
            400, "malformed-xml"),
    Hostile("unknown-root", "application/xml", lambda d: b"<html><body>invoice</body></html>", 422, "unsupported-xml"),
    Hostile("xinclude-not-processed", "application/xml", lambda d: d.ubl.replace(
        b"<cbc:CustomizationID>", b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>'
        b"<cbc:CustomizationID>"), 422, "xsd-invalid"),
    Hostile("json-sent-as-xml", "application/xml", valid_json, 400, "malformed-xml"),
    # Content-Type and size
    Hostile("xml-sent-as-json", "application/json", lambda d: d.ubl, 400, "malformed-json"),
    Hostile("text-plain", "text/plain", valid_json, 415, "unsupported-media-type"),
    Hostile("octet-stream", "application/octet-stream", lambda d: d.facturx, 415, "unsupported-media-type"),
    Hostile("no-content-type", None, valid_json, 415, "unsupported-media-type"),
    Hostile("oversize-body", "application/xml", lambda d: d.ubl + b" " * MAX_BODY, 413, "payload-too-large"),
    # PDF
    Hostile("xml-sent-as-pdf", "application/pdf", lambda d: d.ubl, 422, "not-a-pdf"),
    Hostile("garbage-pdf", "application/pdf", lambda d: b"%PDF-1.7\n" + bytes(range(256)) * 40, 422, "unreadable-pdf"),
    Hostile("pdf-with-javascript", "application/pdf", lambda d: pdf_with(javascript), 422, "unsafe-pdf"),
    Hostile("pdf-with-hidden-javascript", "application/pdf", lambda d: pdf_with(javascript).replace(
        b"/JavaScript", b"/Java#53cript").replace(b"/JS ", b"/J#53 "), 422, "unsafe-pdf"),
    Hostile("pdf-with-launch-action", "application/pdf", lambda d: pdf_with(launch_link), 422, "unsafe-pdf"),
    Hostile("encrypted-pdf", "application/pdf", lambda d: pdf_with(encrypted), 422, "unsafe-pdf"),
    Hostile("too-many-pages", "application/pdf", lambda d: pdf_with(attach("factur-x.xml", d.cii), pages=MAX_PAGES + 1),
            422, "too-many-pages"),
    Hostile("pdf-without-xml", "application/pdf", lambda d: pdf_with(lambda w: None), 422, "pdf-without-invoice-data"),
    Hostile("facturx-decompression-bomb", "application/pdf",
            lambda d: pdf_with(attach("factur-x.xml", b"<a/>", inflate_to=60_000_000)), 422, "pdf-decompression-limit"),
    Hostile("facturx-with-billion-laughs", "application/pdf", lambda d: pdf_with(attach("factur-x.xml", laughs())),
            422, "unsafe-xml"),
    Hostile("facturx-with-xxe", "application/pdf",
            lambda d: pdf_with(attach("factur-x.xml", dtd('<!ENTITY x SYSTEM "file:///etc/passwd">'))), 422, "unsafe-xml"),
    Hostile("json-with-javascript-pdf", "application/json", lambda d: json.dumps(
        {**d.invoice, "pdf": base64.b64encode(pdf_with(javascript)).decode()}).encode(), 422, "unsafe-pdf"),
    # multipart
    Hostile("multipart-without-boundary", "multipart/form-data", lambda d: b"--x\r\n\r\n", 400, "malformed-multipart"),
    Hostile("multipart-without-invoice", "multipart/form-data",
            lambda d: multipart({"pdf": ("a.pdf", d.blank_pdf, "application/pdf")})[0], 422, "validation-error"),
    Hostile("multipart-pdf-not-a-pdf", "multipart/form-data", lambda d: multipart({
        "invoice": ("i.json", valid_json(d), "application/json"), "pdf": ("a.pdf", b"<html/>", "application/pdf")})[0],
        422, "not-a-pdf"),
    Hostile("multipart-pdf-with-javascript", "multipart/form-data", lambda d: multipart({
        "invoice": ("i.json", valid_json(d), "application/json"),
        "pdf": ("a.pdf", pdf_with(javascript), "application/pdf")})[0], 422, "unsafe-pdf"),
]


class SimpleDocs:
    """What the builders need, made once per test from the conftest fixtures."""

    def __init__(self, documents, invoice: dict):
        self.invoice = invoice
        self.ubl = documents.ubl(invoice)
        self.cii = documents.cii(invoice)
        self.facturx = documents.facturx(self.cii)
        self.blank_pdf = documents.blank_pdf()


def content_type_of(case: Hostile) -> dict[str, str]:
    if case.content_type == "multipart/form-data" and case.name != "multipart-without-boundary":
        return {"Content-Type": multipart({})[1]}
    return {"Content-Type": case.content_type} if case.content_type else {}


def test_the_list_is_long_enough():
    assert len(HOSTILE) >= 30 and len({case.name for case in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("case", [c for c in HOSTILE if c.content_type in ("application/xml", "text/xml")
                                  and c.status != 413], ids=lambda c: c.name)
def test_hostile_xml_is_refused_by_the_reader(case, documents, make_invoice):
    """The same XML cases, straight at the reader (fast, and the failure names the case)."""
    with pytest.raises(DocumentError) as caught:
        root = parse_xml(case.build(SimpleDocs(documents, make_invoice("F-X"))))
        syntax_of(root)
        if issues := xsd_issues(root):
            raise DocumentError(422, "xsd-invalid", "as the service answers", issues)
    assert (caught.value.status, caught.value.slug) == (case.status, case.slug)


@pytest.mark.parametrize("case", [c for c in HOSTILE if c.content_type == "application/pdf"], ids=lambda c: c.name)
def test_hostile_pdf_is_refused_by_the_inspector(case, documents, make_invoice):
    with pytest.raises(DocumentError) as caught:
        xml = inspect_pdf(case.build(SimpleDocs(documents, make_invoice("F-X"))), limits=PdfLimits(max_pages=MAX_PAGES))
        if xml is None:
            raise DocumentError(422, "pdf-without-invoice-data", "")
        parse_xml(xml)
    assert (caught.value.status, caught.value.slug) == (case.status, case.slug)


async def test_every_hostile_body_is_refused_and_changes_nothing(run_service, tenant_key, documents, make_invoice,
                                                                 read_events, count_rows):
    ingest = await run_service("ingest", max_body_bytes=MAX_BODY, max_pdf_pages=MAX_PAGES)
    acme = {"Authorization": f"Bearer {await tenant_key(ingest)}"}
    docs = SimpleDocs(documents, make_invoice("F-HOSTILE"))
    wrong: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=ingest.url, timeout=60) as client:
        for case in HOSTILE:
            response = await client.post("/v1/invoices", content=case.build(docs), headers={**acme, **content_type_of(case)})
            slug = response.json().get("type", "").rsplit("/", 1)[-1] if response.headers.get(
                "content-type") == PROBLEM_JSON else None
            if (response.status_code, slug) != (case.status, case.slug):
                wrong[case.name] = f"{response.status_code} {slug}: {response.text[:200]}"
        assert wrong == {}

        for model in (InvoiceRow, InvoicePdfRow, InvoiceSourceRow):
            assert await count_rows(ingest, model) == 0
        assert (await client.get("/healthz")).status_code == 200
        after_xml = documents.ubl({**docs.invoice, "number": "F-AFTER-xml"})
        after_pdf = documents.facturx(documents.cii({**docs.invoice, "number": "F-AFTER-pdf"}))
        for content, media in ((after_xml, "application/xml"), (after_pdf, "application/pdf")):
            assert (await client.post("/v1/invoices", content=content,
                                      headers={**acme, "Content-Type": media})).status_code == 202
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(es) >= 2)
    assert sorted(e.invoice.number for e in events if isinstance(e, InvoiceReceived)) == ["F-AFTER-pdf", "F-AFTER-xml"]

"""Hostile input on ingest: the document corpus of tests/ingest/test_ingest_hostile.py (XXE, billion
laughs, PDF bombs and scripts, wrong types, oversize…) plus invoices whose figures or dates are wrong
(EN 16931 arithmetic, negative amounts, dates out of range), duplicates, and batch files (macros,
formulas, zip bombs, broken encodings) — each refused with a 4xx problem+json, nothing stored or
published, ingest still healthy."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from types import SimpleNamespace

from openpyxl import Workbook

from tests.ingest.conftest import (VALID_INVOICE, blank_pdf, cii_document, facturx_pdf, mapping_profile, text_pdf,
                                   ubl_document)
from tests.ingest.test_ingest_hostile import HOSTILE, MAX_BODY, MAX_PAGES, SimpleDocs, content_type_of

from .conftest import BODY_TIMEOUT, Case, json_body_cases  # noqa: TID252

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROFILE = mapping_profile()
HEADER = list(PROFILE["columns"])
BATCH_BYTES = 30 * 2**20  # a whole batch upload (and how far a workbook may inflate)
ROW = ["C-1", "2026-11-02", "2026-12-02", "CUST-42", "Dupont", "Audit", "1", "100.00", "20", "100.00", "100.00",
       "20.00", "120.00"]


def document_cases(docs: SimpleDocs) -> list[Case]:
    """The ingest corpus, as cases of this harness (the same bodies and expectations)."""
    return [Case(f"document-{c.name}", "POST", "/v1/invoices",
                 lambda ctx, c=c: {"content": c.build(docs), "headers": content_type_of(c)}, c.status, c.slug)
            for c in HOSTILE]


def invoice(**change) -> dict:
    body = copy.deepcopy(VALID_INVOICE)
    body["number"] = "F-HOSTILE-1"
    for path, value in change.items():
        target = body
        *parents, leaf = path.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(leaf) if leaf.isdigit() else leaf] = value
    return body


def bad_invoice(name: str, status: int, pointer: str | None = None, **change) -> Case:
    return Case(f"invoice-{name}", "POST", "/v1/invoices", lambda ctx: {"json": invoice(**change)}, status,
                pointer=pointer)


INVOICE_CASES = [
    *json_body_cases("invoice-json", "POST", "/v1/invoices", lambda ctx: invoice(), text_field="number",
                     oversize=MAX_BODY),
    # EN 16931 arithmetic
    bad_invoice("line-total-wrong", 422, "/lines/0/line_total_excl_tax", **{"lines.0.line_total_excl_tax": "100.02"}),
    bad_invoice("sum-of-lines-wrong", 422, "/totals", **{"totals.total_excl_tax": "120.61"}),
    bad_invoice("vat-wrong", 422, "/totals", **{"totals.total_tax": "24.04"}),
    bad_invoice("grand-total-wrong", 422, "/totals", **{"totals.total_incl_tax": "144.64"}),
    bad_invoice("vat-rate-150", 422, "/lines/0/vat_rate", **{"lines.0.vat_rate": 150}),
    bad_invoice("three-decimals-total", 422, "/totals", **{"totals.total_incl_tax": "144.633"}),
    bad_invoice("amount-as-exponent", 422, None, **{"totals.total_incl_tax": "1e400"}),
    bad_invoice("amount-nan", 422, None, **{"totals.total_incl_tax": "NaN"}),
    bad_invoice("amount-infinity", 422, None, **{"totals.total_incl_tax": "Infinity"}),
    # negative amounts
    bad_invoice("negative-quantity", 422, "/lines/0", **{"lines.0.quantity": "-3"}),
    bad_invoice("negative-price", 422, "/lines/0", **{"lines.0.unit_price": "-33.335"}),
    bad_invoice("negative-totals", 422, "/totals", **{"totals.total_excl_tax": "-120.60",
                                                      "totals.total_incl_tax": "-144.63"}),
    # dates out of range
    bad_invoice("due-before-issue", 422, "/due_date", due_date="2026-10-01"),
    bad_invoice("february-30", 422, "/issue_date", issue_date="2026-02-30"),
    bad_invoice("year-0", 422, "/issue_date", issue_date="0000-01-01"),
    bad_invoice("year-9999", 422, None, issue_date="9999-12-30", due_date="9999-12-31"),
    bad_invoice("year-1900", 422, "/issue_date", issue_date="1900-01-01", due_date="1900-02-01"),
    bad_invoice("date-with-time", 422, "/issue_date", issue_date="2026-11-02T25:00:00"),
    bad_invoice("date-as-number", 422, "/issue_date", issue_date=20261102),
    # identifiers and text
    bad_invoice("bad-siren", 422, "/seller/siren", **{"seller.siren": "732829321"}),
    bad_invoice("bad-vat-format", 422, "/seller/vat_id", **{"seller.vat_id": "FR 44 732/829"}),
    bad_invoice("unknown-currency", 422, "/currency", currency="XXX1"),
    bad_invoice("no-lines", 422, "/lines", lines=[]),
    bad_invoice("number-with-newline", 422, "/number", number="F-1\r\nBcc: all@evil.example"),
    bad_invoice("nul-in-buyer", 422, "/buyer/name", **{"buyer.name": "Dupont\u0000SARL"}),
    Case("invoice-duplicate", "POST", "/v1/invoices", lambda ctx: {"json": ctx.existing}, 409),
    Case("invoice-pdf-not-base64", "POST", "/v1/invoices", lambda ctx: {"json": {**invoice(), "pdf": "%%%"}}, 422,
         pointer="/pdf"),
]


def zipped(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in entries.items():
            package.writestr(name, data)
    return out.getvalue()


def workbook(*rows) -> bytes:
    book = Workbook()
    book.active.append(HEADER)
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_entries(xlsx: bytes, extra: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry, source.read(entry))
        for name, data in extra.items():
            target.writestr(name, data)
    return out.getvalue()


def batch(content: bytes, media_type: str | None, profile: str | None = "erp") -> dict:
    return {"content": content, "headers": {"Content-Type": media_type} if media_type else {},
            "params": {"profile": profile} if profile else {}}


def batch_case(name: str, content, media_type: str | None, status: int | None, slug: str | None = None,
               profile: str | None = "erp") -> Case:
    return Case(f"batch-{name}", "POST", "/v1/batches", lambda ctx: batch(content() if callable(content) else content,
                                                                          media_type, profile), status, slug)


CSV = ",".join(HEADER).encode() + b"\n" + ",".join(ROW).encode() + b"\n"
BATCH_CASES = [
    *json_body_cases("batch-json", "POST", "/v1/batches", lambda ctx: [invoice()], text_field=None,
                     oversize=BATCH_BYTES),
    batch_case("json-empty-list", b"[]", "application/json", 422),
    batch_case("xlsx-with-macros", lambda: with_entries(workbook(ROW), {"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0"}),
               XLSX, 422, "spreadsheet-with-macros"),
    batch_case("xlsm-declared", lambda: workbook(ROW), "application/vnd.ms-excel.sheet.macroEnabled.12", None),
    batch_case("xlsx-with-formula", lambda: workbook([*ROW[:9], "=G2*H2", *ROW[10:]]), XLSX, 422,
               "spreadsheet-with-formulas"),
    batch_case("xlsx-dde-formula", lambda: workbook([*ROW[:5], "=cmd|' /C calc'!A0", *ROW[6:]]), XLSX, 422,
               "spreadsheet-with-formulas"),
    batch_case("xlsx-not-a-zip", b"PK\x03\x04 not really", XLSX, 400, "malformed-xlsx"),
    batch_case("xlsx-zip-bomb", lambda: with_entries(workbook(ROW), {"xl/bomb.xml": b"\0" * 80_000_000}), XLSX, 413,
               "xlsx-decompression-limit"),
    batch_case("xlsx-empty-zip", lambda: zipped({}), XLSX, 400, "malformed-xlsx"),
    batch_case("csv-broken-utf8", b"no,issued\n\xff\xfe,\xc3\x28\n", "text/csv", 400, "malformed-csv"),
    batch_case("csv-missing-columns", b"no,issued\nC-1,2026-11-02\n", "text/csv", 422, "missing-columns"),
    batch_case("csv-unknown-profile", CSV, "text/csv", 422, profile="nope"),
    batch_case("csv-without-profile", CSV, "text/csv", 422, profile=None),
    batch_case("csv-nul-bytes", CSV.replace(b"Dupont", b"Du\0pont"), "text/csv", None),
    batch_case("csv-only-header", b",".join(h.encode() for h in HEADER) + b"\n", "text/csv", 422),
    batch_case("pdf-as-batch-without-rule", lambda: text_pdf("Facture S-1"), "application/pdf", None),
    batch_case("gzip-as-batch", b"\x1f\x8b\x08\x00" + b"\0" * 100, "application/gzip", 415),
]


async def test_ingest_refuses_every_hostile_body(run_service, tenant_key, attack):
    ingest = await run_service("ingest", max_body_bytes=MAX_BODY, max_pdf_pages=MAX_PAGES, max_batch_bytes=BATCH_BYTES,
                                **BODY_TIMEOUT)
    key = await tenant_key(ingest)
    import httpx
    async with httpx.AsyncClient(base_url=ingest.url, headers={"Authorization": f"Bearer {key}"}) as client:
        existing = invoice(number="F-EXISTING")
        assert (await client.post("/v1/invoices", json=existing)).status_code == 202
        assert (await client.put("/v1/mapping-profiles/erp", json=PROFILE)).status_code == 201
    documents = SimpleNamespace(ubl=ubl_document, cii=cii_document, facturx=facturx_pdf, blank_pdf=blank_pdf)
    docs = SimpleDocs(documents, invoice(number="F-HOSTILE-DOC"))
    cases = document_cases(docs) + INVOICE_CASES + BATCH_CASES
    await attack(ingest, key, cases, SimpleNamespace(existing=existing))

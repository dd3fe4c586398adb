"""The split itself (PDFium reads the text and cuts the parts, behind pypdf's decompression limits): the
parts carry their pages and first page's text, the same pages give the same bytes, and a page whose
content inflates beyond the limit is refused before PDFium reads it."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ContentStream, NameObject
from reportlab.pdfgen import canvas

from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.domain.documents.pdf import PdfLimits, inspect_pdf
from parcours_ingest.domain.pdf_split import SplitRule, split_pdf

ANCHOR = SplitRule(mode="anchor", anchor=r"Facture n° (?P<number>F-\d+)")


def batch(*first_lines: str) -> bytes:
    out = io.BytesIO()
    document = canvas.Canvas(out)
    for line in first_lines:
        document.drawString(72, 760, line)
        document.drawString(72, 740, "Prestation de conseil, 2 × 500,00 € HT")
        document.showPage()
    document.save()
    return out.getvalue()


def test_parts_by_anchor_with_their_pages_text_and_stable_bytes():
    content = batch("Sommaire", "Facture n° F-001", "suite", "Facture n° F-002")
    parts = split_pdf(content, ANCHOR, limits=PdfLimits())
    assert [(p.first_page, p.last_page, p.number) for p in parts] == [(1, 1, None), (2, 3, "F-001"), (4, 4, "F-002")]
    assert parts[1].text.splitlines() == ["Facture n° F-001", "Prestation de conseil, 2 × 500,00 € HT"]
    second = PdfReader(io.BytesIO(parts[1].pdf))
    assert [page.extract_text().splitlines()[0] for page in second.pages] == ["Facture n° F-001", "suite"]
    inspect_pdf(parts[1].pdf, limits=PdfLimits())  # a part is a PDF ingest accepts
    assert [p.pdf for p in split_pdf(content, ANCHOR, limits=PdfLimits())] == [p.pdf for p in parts]


def test_too_many_pages_and_a_content_bomb_are_refused():
    content = batch("Facture n° F-001", "Facture n° F-002")
    with pytest.raises(DocumentError) as refused:
        split_pdf(content, ANCHOR, limits=PdfLimits(max_pages=1))
    assert refused.value.slug == "too-many-pages"

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(content)))
    bomb = ContentStream(None, writer)
    bomb.set_data(b"%" + b" " * 5_000_000 + b"\n")  # a few KB once deflated
    writer.pages[1][NameObject("/Contents")] = writer._add_object(bomb.flate_encode())
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(DocumentError) as refused:
        split_pdf(out.getvalue(), ANCHOR, limits=PdfLimits(max_decompressed_bytes=1_000_000))
    assert refused.value.slug == "pdf-decompression-limit"
    assert len(split_pdf(out.getvalue(), ANCHOR, limits=PdfLimits())) == 1  # under the limit: read, no anchor on it

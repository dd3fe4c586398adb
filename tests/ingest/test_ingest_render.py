"""The PDF Parcours renders for an invoice sent as data only: the mentions French law requires,
French or English, every font embedded (nothing fetched)."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal

import pypdfium2 as pdfium
import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.domain.legal import LegalMentions
from parcours_ingest.domain.render_pdf import Branding, money, render_invoice


def model(body: dict) -> Invoice:
    return Invoice.model_validate(json.loads(json.dumps(body), parse_float=Decimal))


def addressed(body: dict) -> dict:
    body["seller"]["address"] = {"line1": "12 rue de la Paix", "postcode": "75002", "city": "Paris"}
    body["buyer"]["vat_id"] = "FR89552100554"
    return body


def text_and_fonts(pdf: bytes) -> tuple[str, set[tuple[str, bool]]]:
    reader = PdfReader(io.BytesIO(pdf))
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            descriptor = (descendants[0].get_object() if descendants else font).get("/FontDescriptor")
            embedded = descriptor is not None and any(k in descriptor.get_object() for k in ("/FontFile", "/FontFile2",
                                                                                          "/FontFile3"))
            fonts.add((str(font["/BaseFont"]), embedded))
    return "\n".join(page.extract_text() for page in reader.pages), fonts


def test_french_invoice_carries_the_legal_mentions_with_embedded_fonts(make_invoice):
    text, fonts = text_and_fonts(render_invoice(model(addressed(make_invoice("F-2026-0042")))))
    for expected in ("FACTURE N° F-2026-0042", "Date d'émission : 02/11/2026", "Échéance : 02/12/2026",
                     "ACME SAS", "12 rue de la Paix", "75002 Paris", "SIREN : 732829320", "SIRET : 73282932000074",
                     "N° TVA : FR44732829320", "Dupont SARL", "N° TVA : FR89552100554", "Réf. client : CUST-42",
                     "Consulting", "33,335", "100,01", "Récapitulatif TVA", "20 % (S)", "5,5 % (S)", "24,00",
                     "Total HT", "120,60", "Total TTC", "144,63", "À régler au plus tard le 02/12/2026",
                     "BCE majoré de 10 points", "L441-10", "40 €", "D441-5", "Pas d'escompte"):
        assert expected in text, expected
    assert fonts and all(embedded for _, embedded in fonts), fonts  # PDF/A: no font left to the reader


def test_english_credit_note_and_branding(make_invoice):
    body = {**make_invoice("AV-7"), "type_code": "381"}
    pdf = render_invoice(model(body), language="en", branding=Branding(accent="#aa0000", footer="ACME SAS — RCS Paris"),
                         mentions=LegalMentions(language="en", penalty_rate="12 % per year"))
    text, _ = text_and_fonts(pdf)
    for expected in ("CREDIT NOTE No. AV-7", "Issue date", "Total incl. VAT", "€144.63", "12 % per year",
                     "40 €", "No discount for early payment", "ACME SAS — RCS Paris"):
        assert expected in text, expected
    assert "FACTURE" not in text


def test_many_lines_flow_onto_further_pages(make_invoice):
    body = make_invoice()
    body["lines"] = [{"description": f"Item {i}", "quantity": "1", "unit_price": "1.00", "vat_rate": "20",
                      "line_total_excl_tax": "1.00"} for i in range(120)]
    body["totals"] = {"total_excl_tax": "120.00", "total_tax": "24.00", "total_incl_tax": "144.00"}
    reader = PdfReader(io.BytesIO(render_invoice(model(body))))
    assert len(reader.pages) >= 3
    assert "Item 119" in reader.pages[-1].extract_text() or "Item 119" in reader.pages[-2].extract_text()


@pytest.mark.parametrize("value, currency, language, expected", [
    (Decimal("1234.5"), "EUR", "fr", "1\u202f234,50\u00a0€"), (Decimal("1234.5"), "EUR", "en", "€1,234.50"),
    (Decimal("-3"), "USD", "en", "-3.00 USD")])
def test_money(value, currency, language, expected):
    assert money(value, currency, language) == expected


def test_long_words_wrap_unknown_characters_stay_and_the_same_invoice_gives_the_same_bytes(make_invoice):
    body = make_invoice("F-2026-0043")
    word = "Maintenance" * 12  # wider than the description column: cut, nothing lost
    body["lines"][0]["description"] = f"{word} ✓ 数据 fin"
    invoice = model(body)
    pdf = render_invoice(invoice)
    assert render_invoice(invoice) == pdf  # a retried render stores the same blob
    text, fonts = text_and_fonts(pdf)
    assert word in "".join(text.split()) and "? ??" in text and "fin" in text  # what the font lacks shows as "?"
    shown = re.findall(rb"<([0-9A-F]+)>\s*Tj", PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data())
    assert shown and not any(codes[i:i + 4] == b"0000" for codes in shown for i in range(0, len(codes), 4))  # PDF/A: no .notdef
    assert fonts and all(embedded for _, embedded in fonts)
    document = pdfium.PdfDocument(pdf)  # a second reader agrees on the text
    assert "FACTURE N° F-2026-0043" in document[0].get_textpage().get_text_range()


def test_the_embedded_fonts_are_cut_to_the_glyphs_drawn(make_invoice):
    reader = PdfReader(io.BytesIO(render_invoice(model(make_invoice("F-2026-0044")))))
    for font in reader.pages[0]["/Resources"]["/Font"].values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        program = TTFont(io.BytesIO(descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data()))
        drawn = {name for name in program.getGlyphOrder() if program["glyf"][name].numberOfContours}
        assert 10 < len(drawn) < len(program.getGlyphOrder()) / 2, len(drawn)
        assert str(descendant["/FontDescriptor"]["/FontName"])[7] == "+"  # a subset says so in its name

"""The PDF of an invoice posted as data only: seller and buyer identity (SIREN/SIRET, VAT numbers,
addresses), dates, lines, VAT breakdown, totals, due date and the mentions French law requires,
in French or English. ReportLab with the Bitstream Vera TrueType fonts it ships, embedded (subset)
in the PDF: nothing is fetched at run time and the PDF is ready to become PDF/A-3 (Factur-X)."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from parcours_ingest.domain.invoice import Buyer, InvoiceContent, Seller
from parcours_ingest.domain.legal import Language, LegalMentions
from parcours_ingest.domain.vat_summary import vat_entries

FONT, FONT_BOLD = "ParcoursSans", "ParcoursSans-Bold"

LABELS: dict[Language, dict[str, str]] = {
    "fr": {"380": "FACTURE", "381": "AVOIR", "384": "FACTURE RECTIFICATIVE", "389": "AUTOFACTURE",
           "number": "N°", "issue_date": "Date d'émission", "due_date": "Échéance", "seller": "Vendeur",
           "buyer": "Client", "customer_ref": "Réf. client", "siren": "SIREN", "siret": "SIRET", "vat_id": "N° TVA",
           "description": "Désignation", "quantity": "Qté", "unit_price": "P.U. HT", "vat_rate": "TVA",
           "line_total": "Total HT", "vat_breakdown": "Récapitulatif TVA", "base": "Base HT", "tax": "Montant TVA",
           "total_excl_tax": "Total HT", "total_tax": "Total TVA", "total_incl_tax": "Total TTC",
           "prepaid": "Déjà réglé", "amount_due": "Net à payer", "allowance": "Remise", "charge": "Frais",
           "payment": "Conditions de paiement", "pay_by": "À régler au plus tard le"},
    "en": {"380": "INVOICE", "381": "CREDIT NOTE", "384": "CORRECTED INVOICE", "389": "SELF-BILLED INVOICE",
           "number": "No.", "issue_date": "Issue date", "due_date": "Due date", "seller": "Seller", "buyer": "Customer",
           "customer_ref": "Customer ref.", "siren": "SIREN", "siret": "SIRET", "vat_id": "VAT no.",
           "description": "Description", "quantity": "Qty", "unit_price": "Unit price", "vat_rate": "VAT",
           "line_total": "Net amount", "vat_breakdown": "VAT breakdown", "base": "Taxable amount", "tax": "VAT amount",
           "total_excl_tax": "Total excl. VAT", "total_tax": "Total VAT", "total_incl_tax": "Total incl. VAT",
           "prepaid": "Already paid", "amount_due": "Amount due", "allowance": "Allowance", "charge": "Charge",
           "payment": "Payment terms", "pay_by": "Payable by"},
}


@dataclass(frozen=True)
class Branding:
    """A tenant's look: accent colour (#rrggbb), a footer line (e.g. capital, RCS, address), and the display
    name and logo (PNG, JPEG or GIF bytes) of the masthead."""

    accent: str = "#1f4e79"
    footer: str | None = None
    name: str | None = None
    logo: bytes | None = None


LOGO_MAX_PIXELS = 4096 * 4096  # a small file may still claim a huge image: such a logo is left out
LOGO_BOX_MM = (45, 18)
LOGO_MAX_SIZE_PX = (532, 213)  # the box at 300 dpi


@functools.lru_cache(maxsize=32)
def _logo_image(data: bytes):
    """The logo decoded as RGB(A) (a PDF/A with an sRGB output intent may not carry CMYK) and whether it has
    transparency, or None when it cannot be read. Kept per process: a tenant's logo is decoded once."""
    from PIL import Image as PILImage
    from reportlab.lib.utils import ImageReader

    try:
        with PILImage.open(io.BytesIO(data)) as image:
            if image.width * image.height > LOGO_MAX_PIXELS:
                return None
            image.load()
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image = image.convert("RGBA" if transparent else "RGB")
            image.thumbnail(LOGO_MAX_SIZE_PX)  # 300 dpi in its box is enough: smaller PDFs, small cache entries
            return ImageReader(image), transparent
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return None


def _logo_flowable(data: bytes):
    """The logo fitted in its box, or None when it cannot be read."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Flowable

    decoded = _logo_image(data)
    if decoded is None:
        return None
    reader, transparent = decoded
    width, height = reader.getSize()
    scale = min(LOGO_BOX_MM[0] * mm / width, LOGO_BOX_MM[1] * mm / height)
    size = (width * scale, height * scale)

    class Logo(Flowable):
        def wrap(self, *_):
            return size

        def draw(self):
            self.canv.drawImage(reader, 0, 0, *size, mask="auto" if transparent else None)

    return Logo()


def money(value: Decimal, currency: str, language: Language, *, unit: bool = False) -> str:
    """1234.5 EUR → "1 234,50 €" (fr) or "€1,234.50" (en); other currencies keep their code. A unit
    price keeps the decimals it was given beyond the cents (33.335)."""
    places = max(2, -value.normalize().as_tuple().exponent) if unit else 2
    text = f"{value:,.{places}f}"
    symbol = "€" if currency == "EUR" else currency
    if language == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
        return f"{text}\u00a0{symbol}"
    return f"{symbol}{text}" if symbol == "€" else f"{text} {symbol}"


def number(value: Decimal, language: Language) -> str:
    text = format(value.normalize() if value == value.to_integral() else value, "f")
    return text.replace(".", ",") if language == "fr" else text


def _fonts_registered() -> None:
    from reportlab import rl_config
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    rl_config.useA85 = 0  # binary (deflated) streams: ASCII85 makes them 25 % larger and slower to write and read
    fonts = Path(rl_config.__file__).parent / "fonts"
    pdfmetrics.registerFont(TTFont(FONT, str(fonts / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(fonts / "VeraBd.ttf")))


def render_invoice(invoice: InvoiceContent, *, language: Language = "fr", mentions: LegalMentions | None = None,
                   branding: Branding | None = None) -> bytes:
    """The invoice as a PDF (A4), fonts embedded."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

    _fonts_registered()
    labels, branding = LABELS[language], branding or Branding()
    mentions = mentions or LegalMentions(language=language)
    accent = colors.HexColor(branding.accent)
    body = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)
    bold = ParagraphStyle("bold", parent=body, fontName=FONT_BOLD)
    title = ParagraphStyle("title", parent=body, fontName=FONT_BOLD, fontSize=16, leading=20, textColor=accent)
    cur = invoice.currency

    def p(text: object, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(_escape(str(text)), style)

    story: list = []
    logo = _logo_flowable(branding.logo) if branding.logo else None
    if logo is not None or branding.name:
        brand = ParagraphStyle("brand", parent=title, fontSize=13, leading=16, alignment=2)
        story += [Table([[logo or "", p(branding.name or "", brand)]], colWidths=[90 * mm, 90 * mm],
                        style=_grid(colors, accent, header=False, lines=False, valign="MIDDLE")),
                  Spacer(1, 4 * mm)]
    heading = Table([[p(f"{labels[invoice.type_code]} {labels['number']} {invoice.number}", title),
                      [p(f"{labels['issue_date']} : {invoice.issue_date:%d/%m/%Y}", bold),
                       p(f"{labels['due_date']} : {invoice.due_date:%d/%m/%Y}", bold)]]],
                    colWidths=[110 * mm, 70 * mm], style=_grid(colors, accent, header=False, lines=False))
    story += [heading, Spacer(1, 6 * mm)]
    story.append(Table([[_party_block(invoice.seller, labels["seller"], labels, p, bold),
                         _party_block(invoice.buyer, labels["buyer"], labels, p, bold)]], colWidths=[90 * mm, 90 * mm],
                       style=_grid(colors, accent, header=False, lines=False)))
    story.append(Spacer(1, 6 * mm))

    # short cells (figures, labels) are plain strings in the table's font: a Paragraph each would double the
    # time of a render; only what may wrap (descriptions, reasons) is a Paragraph
    rows: list[list] = [[labels[k] for k in ("description", "quantity", "unit_price", "vat_rate", "line_total")]]
    for line in invoice.lines:
        rows.append([p(line.description), number(line.quantity, language), money(line.unit_price, cur, language, unit=True),
                     f"{number(line.vat_rate, language)} %", money(line.line_total_excl_tax, cur, language)])
        for item in line.allowances_charges:
            sign = "" if item.charge else "−"
            rows.append([p(f"  {labels['charge' if item.charge else 'allowance']} {item.reason or ''}", small), "",
                         "", "", f"{sign}{money(item.amount, cur, language)}"])
    for item in invoice.allowances_charges:
        sign = "" if item.charge else "−"
        rows.append([p(f"{labels['charge' if item.charge else 'allowance']} {item.reason or ''}"), "", "",
                     f"{number(item.vat_rate or Decimal(0), language)} %", f"{sign}{money(item.amount, cur, language)}"])
    story.append(Table(rows, colWidths=[85 * mm, 18 * mm, 28 * mm, 17 * mm, 32 * mm], repeatRows=1,
                       style=_grid(colors, accent, right_from=1)))
    story.append(Spacer(1, 5 * mm))

    story.append(p(labels["vat_breakdown"], bold))
    vat_rows = [[labels[k] for k in ("vat_rate", "base", "tax")]]
    vat_rows += [[f"{number(e.rate, language)} % ({e.category})", money(e.base, cur, language),
                  money(e.tax, cur, language)] for e in vat_entries(invoice)]
    totals = invoice.totals
    total_rows = [[labels["total_excl_tax"], money(totals.total_excl_tax, cur, language)],
                  [labels["total_tax"], money(totals.total_tax, cur, language)],
                  [labels["total_incl_tax"], money(totals.total_incl_tax, cur, language)]]
    bold_rows = [2]
    if totals.prepaid_amount:
        due = totals.total_incl_tax - totals.prepaid_amount
        total_rows += [[labels["prepaid"], money(totals.prepaid_amount, cur, language)],
                       [labels["amount_due"], money(due, cur, language)]]
        bold_rows.append(4)
    story.append(Table([[Table(vat_rows, colWidths=[30 * mm, 30 * mm, 30 * mm], style=_grid(colors, accent, right_from=1)),
                         Table(total_rows, colWidths=[45 * mm, 35 * mm],
                               style=_grid(colors, accent, header=False, right_from=1, bold_rows=bold_rows))]],
                       colWidths=[95 * mm, 85 * mm], style=_grid(colors, accent, header=False, lines=False)))
    story.append(Spacer(1, 6 * mm))
    story.append(p(labels["payment"], bold))
    story.append(p(f"{labels['pay_by']} {invoice.due_date:%d/%m/%Y}."))
    if invoice.payment_terms:
        story.append(p(invoice.payment_terms))
    for text in (mentions.penalty_text(), mentions.indemnity_text(), mentions.discount_text()):
        story.append(p(text, small))

    footer = branding.footer

    def on_page(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.grey)
        if footer:
            canvas.drawCentredString(A4[0] / 2, 10 * mm, footer[:180])
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"{invoice.number} — {doc.page}")
        canvas.restoreState()

    out = io.BytesIO()
    document = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                                 bottomMargin=18 * mm, title=f"{labels[invoice.type_code]} {invoice.number}",
                                 author=invoice.seller.name, subject=f"{labels[invoice.type_code]} {invoice.number}",
                                 lang=language, invariant=True, initialFontName=FONT)
    document.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return out.getvalue()


def _party_block(party: Seller | Buyer, heading: str, labels: dict[str, str], p, bold):
    lines = [p(heading.upper(), bold), p(party.name, bold)]
    if party.address is not None:
        address = party.address
        for text in (address.line1, address.line2, " ".join(x for x in (address.postcode, address.city) if x),
                     address.country_code if address.country_code != "FR" else None):
            if text:
                lines.append(p(text))
    if isinstance(party, Buyer):
        lines.append(p(f"{labels['customer_ref']} : {party.customer_ref}"))
    for key in ("siren", "siret", "vat_id"):
        value = getattr(party, key)
        if value:
            lines.append(p(f"{labels[key]} : {value}"))
    return lines


def _grid(colors, accent, *, header: bool = True, lines: bool = True, right_from: int | None = None,
          bold_rows: list[int] = (), valign: str = "TOP"):
    from reportlab.platypus import TableStyle

    # every cell in the embedded font: a PDF/A may not name a font it does not embed
    commands = [("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                ("LEADING", (0, 0), (-1, -1), 11), ("VALIGN", (0, 0), (-1, -1), valign),
                ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if right_from is not None:
        commands += [("ALIGN", (right_from, 0), (-1, -1), "RIGHT")]
    if lines:
        commands += [("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey)]
    if header:
        commands += [("LINEBELOW", (0, 0), (-1, 0), 0.8, accent), ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD)]
    commands += [("FONTNAME", (0, row), (-1, row), FONT_BOLD) for row in bold_rows]
    return TableStyle(commands)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

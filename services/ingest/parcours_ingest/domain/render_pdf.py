"""The PDF of an invoice posted as data only: seller and buyer identity (SIREN/SIRET, VAT numbers,
addresses), dates, lines, VAT breakdown, totals, due date and the mentions French law requires,
in French or English. Laid out by our own code on `pdf_canvas` (plain tables and paragraphs, widths
from the font's metrics) with the Bitstream Vera TrueType fonts reportlab ships, embedded (subset): nothing
is fetched at run time and the PDF is ready to become PDF/A-3 (Factur-X). reportlab's platypus took
twice the CPU of a whole Factur-X build for the same page."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from parcours_ingest.domain.invoice import Buyer, InvoiceContent, Seller
from parcours_ingest.domain.legal import Language, LegalMentions
from parcours_ingest.domain.pdf_canvas import A4, BLACK, MM, Canvas, Colour, document, hex_colour, image_of, wrap
from parcours_ingest.domain.pdf_fonts import face
from parcours_ingest.domain.pdf_objects import remember
from parcours_ingest.domain.vat_summary import vat_entries

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




GREY: Colour = (128 / 255, 128 / 255, 128 / 255)
LIGHT_GREY: Colour = (211 / 255, 211 / 255, 211 / 255)
LEFT, TOP, BOTTOM, WIDTH = 15 * MM, A4[1] - 15 * MM, 18 * MM, 180 * MM
PAD = 6  # a cell's (and a paragraph's) side padding, in points
BODY, SMALL = (8.5, 11.0), (7.5, 9.5)  # font size, leading
LINE_COLUMNS = [85 * MM, 18 * MM, 28 * MM, 17 * MM, 32 * MM]


class Cell:
    """Text in a column: wrapped to the column's width, aligned left or right."""

    def __init__(self, text: str, width: float, *, bold: bool = False, style: tuple[float, float] = BODY,
                 right: bool = False, wraps: bool = True) -> None:
        size, self.leading = style
        self.size, self.bold, self.right = size, bold, right
        self.lines = wrap(text, face(bold), size, width - 2 * PAD) if wraps else [text]

    def height(self) -> float:
        return len(self.lines) * self.leading


class Flow:
    """The flow of blocks down the pages: a block that does not fit starts a new page (with its footer)."""

    def __init__(self, canvas: Canvas, footer: str | None, number_: str) -> None:
        self.canvas, self.footer, self.number = canvas, footer, number_
        self.count, self.y = 0, TOP
        self._footers()

    def _footers(self) -> None:
        self.count += 1
        if self.footer:
            self.canvas.text(A4[0] / 2, 10 * MM, self.footer[:180], size=7, colour=GREY, align="center")
        self.canvas.text(A4[0] - 15 * MM, 10 * MM, f"{self.number} — {self.count}", size=7, colour=GREY,
                         align="right")

    def room(self, height: float) -> bool:
        """Whether `height` fits below; starts a new page (False) when it does not."""
        if self.y - height >= BOTTOM or self.y == TOP:
            return True
        self.canvas.new_page()
        self._footers()
        self.y = TOP
        return False

    def row(self, cells: list[Cell], widths: list[float], *, x: float = LEFT, rule: tuple | None = None) -> None:
        """One table row at the cursor (2 pt above and below), with a rule under it."""
        height = max(c.height() for c in cells) + 4
        self.room(height)
        self.cells(cells, widths, x=x, top=self.y)
        if rule is not None:
            self.canvas.line(x, self.y - height, x + sum(widths), self.y - height, width=rule[0], colour=rule[1])
        self.y -= height

    def cells(self, cells: list[Cell], widths: list[float], *, x: float, top: float, colour: Colour = BLACK) -> None:
        for cell, width in zip(cells, widths):
            baseline = top - 2 - cell.size
            for text in cell.lines:
                at, align = (x + width - PAD, "right") if cell.right else (x + PAD, "left")
                self.canvas.text(at, baseline, text, size=cell.size, bold=cell.bold, colour=colour, align=align)
                baseline -= cell.leading
            x += width

    def paragraph(self, text: str, *, bold: bool = False, style: tuple[float, float] = BODY) -> None:
        size, leading = style
        for line in wrap(text, face(bold), size, WIDTH - 2 * PAD):
            self.room(leading)
            self.canvas.text(LEFT + PAD, self.y - size, line, size=size, bold=bold)
            self.y -= leading

    def space(self, height: float) -> None:
        self.y = max(self.y - height, BOTTOM)


def render_invoice(invoice: InvoiceContent, *, language: Language = "fr", mentions: LegalMentions | None = None,
                   branding: Branding | None = None) -> bytes:
    """The invoice as a PDF (A4), fonts embedded. Its pages are kept for the Factur-X built next (never parsed)."""
    labels, branding = LABELS[language], branding or Branding()
    mentions = mentions or LegalMentions(language=language)
    accent, cur = hex_colour(branding.accent), invoice.currency
    canvas = Canvas()
    flow = Flow(canvas, branding.footer, invoice.number)

    logo = image_of(branding.logo, LOGO_MAX_PIXELS, LOGO_MAX_SIZE_PX) if branding.logo else None
    if logo is not None or branding.name:
        name = Cell(branding.name or "", 90 * MM, bold=True, style=(13, 16), right=True)
        size = (0.0, 0.0)
        if logo is not None:
            scale = min(LOGO_BOX_MM[0] * MM / logo.width, LOGO_BOX_MM[1] * MM / logo.height)
            size = (logo.width * scale, logo.height * scale)
        height = max(size[1], name.height()) + 4
        if logo is not None:
            canvas.image(logo, LEFT + PAD, flow.y - 2 - (height - 4 + size[1]) / 2, *size)
        flow.cells([name], [90 * MM], x=LEFT + 90 * MM, top=flow.y - (height - 4 - name.height()) / 2, colour=accent)
        flow.y -= height
        flow.space(4 * MM)

    title = Cell(f"{labels[invoice.type_code]} {labels['number']} {invoice.number}", 110 * MM, bold=True,
                 style=(16, 20))
    dates = Cell(f"{labels['issue_date']} : {invoice.issue_date:%d/%m/%Y}", 70 * MM, bold=True)
    due = Cell(f"{labels['due_date']} : {invoice.due_date:%d/%m/%Y}", 70 * MM, bold=True)
    dates.lines += due.lines
    flow.cells([title], [110 * MM], x=LEFT, top=flow.y, colour=accent)
    flow.cells([dates], [70 * MM], x=LEFT + 110 * MM, top=flow.y)
    flow.y -= max(title.height(), dates.height()) + 4
    flow.space(6 * MM)

    parties = [_party_lines(invoice.seller, labels["seller"], labels), _party_lines(invoice.buyer, labels["buyer"], labels)]
    columns = [[Cell(text, 90 * MM, bold=i < 2) for i, text in enumerate(lines)] for lines in parties]
    heights = [sum(c.height() for c in column) for column in columns]
    flow.room(max(heights) + 4)
    for column, x in zip(columns, (LEFT, LEFT + 90 * MM)):
        top = flow.y
        for cell in column:
            flow.cells([cell], [90 * MM], x=x, top=top)
            top -= cell.height()
    flow.y -= max(heights) + 4
    flow.space(6 * MM)

    header = [Cell(labels[k], w, bold=True, right=i > 0, wraps=False) for i, (k, w) in enumerate(zip(
        ("description", "quantity", "unit_price", "vat_rate", "line_total"), LINE_COLUMNS))]
    rows: list[list[Cell]] = []

    def figures(*texts: str) -> list[Cell]:
        return [Cell(t, w, right=True, wraps=False) for t, w in zip(texts, LINE_COLUMNS[1:])]

    for line in invoice.lines:
        rows.append([Cell(line.description, LINE_COLUMNS[0]), *figures(
            number(line.quantity, language), money(line.unit_price, cur, language, unit=True),
            f"{number(line.vat_rate, language)} %", money(line.line_total_excl_tax, cur, language))])
        for item in line.allowances_charges:
            sign = "" if item.charge else "−"
            rows.append([Cell(f"  {labels['charge' if item.charge else 'allowance']} {item.reason or ''}",
                              LINE_COLUMNS[0], style=SMALL), *figures("", "", "", f"{sign}{money(item.amount, cur, language)}")])
    for item in invoice.allowances_charges:
        sign = "" if item.charge else "−"
        rows.append([Cell(f"{labels['charge' if item.charge else 'allowance']} {item.reason or ''}", LINE_COLUMNS[0]),
                     *figures("", "", f"{number(item.vat_rate or Decimal(0), language)} %",
                              f"{sign}{money(item.amount, cur, language)}")])
    flow.row(header, LINE_COLUMNS, rule=(0.8, accent))
    for row in rows:
        if not flow.room(max(c.height() for c in row) + 4):
            flow.row(header, LINE_COLUMNS, rule=(0.8, accent))  # the header again on each new page
        flow.row(row, LINE_COLUMNS, rule=(0.25, LIGHT_GREY))
    flow.space(5 * MM)

    vat_columns, total_columns = [30 * MM] * 3, [45 * MM, 35 * MM]
    vat_rows = [[Cell(labels[k], 30 * MM, bold=True, right=i > 0, wraps=False)
                 for i, k in enumerate(("vat_rate", "base", "tax"))]]
    vat_rows += [[Cell(f"{number(e.rate, language)} % ({e.category})", 30 * MM, wraps=False),
                  Cell(money(e.base, cur, language), 30 * MM, right=True, wraps=False),
                  Cell(money(e.tax, cur, language), 30 * MM, right=True, wraps=False)] for e in vat_entries(invoice)]
    totals = invoice.totals
    total_rows = [(labels["total_excl_tax"], totals.total_excl_tax, False), (labels["total_tax"], totals.total_tax, False),
                  (labels["total_incl_tax"], totals.total_incl_tax, True)]
    if totals.prepaid_amount:
        total_rows += [(labels["prepaid"], totals.prepaid_amount, False),
                       (labels["amount_due"], totals.total_incl_tax - totals.prepaid_amount, True)]
    total_cells = [[Cell(label, 45 * MM, bold=bold), Cell(money(amount, cur, language), 35 * MM, bold=bold, right=True,
                                                          wraps=False)] for label, amount, bold in total_rows]
    heights = [sum(max(c.height() for c in row) + 4 for row in table) for table in (vat_rows, total_cells)]
    flow.room(max(heights) + BODY[1])
    flow.paragraph(labels["vat_breakdown"], bold=True)
    top = flow.y
    for table, widths, x in ((vat_rows, vat_columns, LEFT), (total_cells, total_columns, LEFT + 95 * MM)):
        flow.y = top
        for i, row in enumerate(table):
            header_row = table is vat_rows and i == 0
            flow.row(row, widths, x=x, rule=(0.8, accent) if header_row else (0.25, LIGHT_GREY))
    flow.y = top - max(heights)
    flow.space(6 * MM)

    flow.paragraph(labels["payment"], bold=True)
    flow.paragraph(f"{labels['pay_by']} {invoice.due_date:%d/%m/%Y}.")
    if invoice.payment_terms:
        flow.paragraph(invoice.payment_terms)
    for text in (mentions.penalty_text(), mentions.indemnity_text(), mentions.discount_text()):
        flow.paragraph(text, style=SMALL)

    part = canvas.part()
    title_text = f"{labels[invoice.type_code]} {invoice.number}"
    content = document(part, title=title_text, author=invoice.seller.name, language=language)
    remember(content, part)
    return content


def _party_lines(party: Seller | Buyer, heading: str, labels: dict[str, str]) -> list[str]:
    lines = [heading.upper(), party.name]
    if party.address is not None:
        address = party.address
        for text in (address.line1, address.line2, " ".join(x for x in (address.postcode, address.city) if x),
                     address.country_code if address.country_code != "FR" else None):
            if text:
                lines.append(text)
    if isinstance(party, Buyer):
        lines.append(f"{labels['customer_ref']} : {party.customer_ref}")
    for key in ("siren", "siret", "vat_id"):
        value = getattr(party, key)
        if value:
            lines.append(f"{labels[key]} : {value}")
    return lines

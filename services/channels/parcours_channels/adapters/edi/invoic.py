"""EDIFACT INVOIC D96A from an invoice. pydifact writes the syntax; the message mapping is ours:

    UNB  interchange: our id → the partner's id (qualifier 14 = GLN unless configured)
    UNH  INVOIC:D:96A:UN
    BGM  document type (380 invoice, 381 credit note…) + invoice number, original (9)
    DTM  137 issue date, 13 due date (CCYYMMDD, format 102)
    NAD  SE seller / BY buyer: SIRET (or SIREN), name; RFF VA their VAT ids
    CUX  invoice currency
    ALC  document allowances (A, MOA 204) and charges (C, MOA 23) with their VAT rate
    LIN  per line: IMD description, QTY 47 invoiced, MOA 203 line net, PRI AAA net price, TAX VAT rate
    UNS  S, then MOA 79 lines total, 125 taxable, 176 tax, 77 total incl. tax, 9 amount due,
         and a TAX + MOA 125/124 per VAT rate
    UNT / UNZ counts and references

Control references derive from the dispatch id, so a resent interchange is the same one."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from uuid import UUID

from pydifact.control.characters import Characters
from pydifact.segmentcollection import Interchange, Message
from pydifact.segments import Segment

from parcours_channels.adapters.invoice_document import InvoiceDocument, Party

MESSAGE_TYPE = ["INVOIC", "D", "96A", "UN"]
CHARACTERS = Characters(decimal_point=".")  # announced in UNA; amounts are written with a point
_SIRET_AGENCY = "ZZZ"  # mutually defined: the partner profile says the ids are SIRET/SIREN


def control_reference(dispatch_id: UUID) -> str:
    """UNB/UNZ interchange control reference (an..14), stable per dispatch."""
    return dispatch_id.hex[:14].upper()


def build_invoic(document: InvoiceDocument, *, dispatch_id: UUID, sender: tuple[str, str],
                 recipient: tuple[str, str], prepared_at: datetime | None = None) -> str:
    """The interchange (UNA…UNZ) carrying one INVOIC message for `document`.
    `sender` and `recipient` are (interchange id, id code qualifier)."""
    prepared_at = (prepared_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    message = Message("1", MESSAGE_TYPE)
    for segment in _segments(document):
        message.add_segment(segment)
    interchange = Interchange(sender=list(sender), recipient=list(recipient),
                              control_reference=control_reference(dispatch_id), syntax_identifier=("UNOC", 3),
                              timestamp=prepared_at, characters=CHARACTERS)
    interchange.has_una_segment = True
    interchange.add_message(message)
    return interchange.serialize()


def _segments(doc: InvoiceDocument) -> list[Segment]:
    segments = [
        Segment("BGM", doc.type_code, doc.number, "9"),
        _dtm("137", doc.issue_date),
        _dtm("13", doc.due_date),
        *_nad("SE", doc.seller),
        *_nad("BY", doc.buyer),
        Segment("CUX", ["2", doc.currency, "4"]),
    ]
    for item in doc.allowances_charges:
        segments += [Segment("ALC", "C" if item.charge else "A", "", "", "", ["", "", "", item.reason or ""]),
                     Segment("MOA", ["23" if item.charge else "204", _amount(item.amount)]),
                     _tax(item.vat_rate)]
    for number, line in enumerate(doc.lines, start=1):
        segments += [
            Segment("LIN", str(number)),
            Segment("IMD", "F", "", ["", "", "", line.description[:256]]),
            Segment("QTY", ["47", _amount(line.quantity)]),
            Segment("MOA", ["203", _amount(line.line_total_excl_tax)]),
            Segment("PRI", ["AAA", _amount(line.unit_price), "", "",
                            _amount(line.price_base_quantity) if line.price_base_quantity else ""]),
            _tax(line.vat_rate),
        ]
    segments += [
        Segment("UNS", "S"),
        Segment("MOA", ["79", _amount(doc.lines_total)]),
        Segment("MOA", ["125", _amount(doc.totals.total_excl_tax)]),
        Segment("MOA", ["176", _amount(doc.totals.total_tax)]),
        Segment("MOA", ["77", _amount(doc.totals.total_incl_tax)]),
        Segment("MOA", ["9", _amount(doc.amount_due)]),
    ]
    for subtotal in doc.vat_subtotals():
        segments += [_tax(subtotal.vat_rate, subtotal.category_code),
                     Segment("MOA", ["125", _amount(subtotal.taxable_amount)]),
                     Segment("MOA", ["124", _amount(subtotal.tax_amount)])]
    return [_trimmed(segment) for segment in segments]


def _dtm(qualifier: str, day: date) -> Segment:
    return Segment("DTM", [qualifier, day.strftime("%Y%m%d"), "102"])


def _nad(qualifier: str, party: Party) -> list[Segment]:
    identifier = party.siret or party.siren
    nad = Segment("NAD", qualifier, [identifier, "", _SIRET_AGENCY] if identifier else "", "", party.name[:35],
                  "", "", "", "", party.country)
    return [nad] + ([Segment("RFF", ["VA", party.vat_id])] if party.vat_id else [])


def _tax(rate: Decimal, category: str | None = None) -> Segment:
    return Segment("TAX", "7", "VAT", "", "", ["", "", "", _amount(rate)], category or ("S" if rate else "Z"))


def _amount(value: Decimal) -> str:
    """EDIFACT numbers: a point (as UNA says), no exponent, no superfluous trailing zeros."""
    return format(value.normalize(), "f")


def _trimmed(segment: Segment) -> Segment:
    """Drop trailing empty elements and components (EDIFACT leaves them out)."""
    elements = list(segment.elements)
    for index, element in enumerate(elements):
        if isinstance(element, list):
            while element and element[-1] == "":
                element = element[:-1]
            elements[index] = element if len(element) > 1 else (element[0] if element else "")
    while elements and elements[-1] in ("", []):
        elements.pop()
    return Segment(segment.tag, *elements)

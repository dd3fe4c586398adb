"""What makes two invoices the same invoice: the tenant, the seller, the invoice number and the
year it was issued in (French numbering restarts or continues per legal entity; two sellers of
one tenant, or two years of one series, may reuse a number). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from parcours_ingest.domain.invoice import InvoiceContent, Seller

_FRENCH_VAT = re.compile(r"^FR[0-9A-Z]{2}([0-9]{9})$")


@dataclass(frozen=True)
class DuplicateKey:
    """Unique per tenant: `seller` is `seller_key` of the invoice's seller."""

    number: str
    seller: str
    issue_year: int

    def describe(self) -> str:
        return f"invoice number {self.number!r} of seller {self.seller.split(':', 1)[1]!r} issued in {self.issue_year}"


def seller_key(seller: Seller) -> str:
    """The seller's legal entity: its SIREN when the invoice gives one (BT-30, or read from the SIRET
    BT-29 or a French VAT number BT-31, which all contain it), else its VAT number, else its name
    (case and spacing ignored)."""
    return seller_key_of(name=seller.name, siren=seller.siren, siret=seller.siret, vat_id=seller.vat_id)


def seller_key_of(*, name: str, siren: str | None, siret: str | None, vat_id: str | None) -> str:
    """seller_key from the seller's fields as stored (the migration that keyed stored invoices uses it too)."""
    siren = siren or (siret[:9] if siret else None)
    if siren is None and vat_id:
        french = _FRENCH_VAT.match(vat_id.upper())
        siren = french.group(1) if french else None
    if siren is not None:
        return f"siren:{siren}"
    if vat_id:
        return f"vat:{vat_id.upper()}"
    return f"name:{' '.join(name.split()).casefold()}"


def duplicate_key(invoice: InvoiceContent) -> DuplicateKey:
    return DuplicateKey(number=invoice.number, seller=seller_key(invoice.seller), issue_year=invoice.issue_date.year)

"""The VAT breakdown (BG-23) every outgoing document shows: one entry per rate, with its category
(UNCL 5305), taxable base and tax, as the arithmetic checks compute them. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from parcours_ingest.domain.arithmetic import round_half_up, vat_breakdown
from parcours_ingest.domain.invoice import InvoiceContent

# EN 16931 wants a reason for every category but S and Z (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10)
EXEMPTION_REASONS = {"E": "VATEX-EU-132", "AE": "VATEX-EU-AE", "K": "VATEX-EU-IC", "G": "VATEX-EU-G", "O": "VATEX-EU-O"}


@dataclass(frozen=True)
class VatEntry:
    rate: Decimal
    category: str
    base: Decimal
    tax: Decimal

    @property
    def exemption_reason_code(self) -> str | None:
        return EXEMPTION_REASONS.get(self.category)


def vat_entries(invoice: InvoiceContent) -> list[VatEntry]:
    """BG-23, by rate (highest first); the category given in the invoice's breakdown, else S (or Z at 0 %)."""
    given = {entry.vat_rate: entry.category_code for entry in invoice.vat_breakdown or () if entry.category_code}
    return [VatEntry(rate=rate, category=category_of(rate, given), base=base, tax=round_half_up(base * rate / 100))
            for rate, base in sorted(vat_breakdown(invoice).items(), reverse=True)]


def category_of(rate: Decimal, given: dict[Decimal, str]) -> str:
    return given.get(rate) or ("S" if rate else "Z")


def line_categories(invoice: InvoiceContent) -> dict[Decimal, str]:
    """VAT category per rate, for lines and allowances/charges."""
    return {entry.rate: entry.category for entry in vat_entries(invoice)}

"""Does the invoice add up? Pure Decimal arithmetic; every mismatch is reported at once.

Rules (EN 16931 business rules BR-CO-10, BR-CO-14, BR-CO-15, with French rounding practice):
- each line net amount = quantity × unit price, rounded half up to 2 decimals;
- total without VAT = sum of the line net amounts;
- total VAT = sum over VAT rates of (taxable base of that rate × rate / 100), each rounded half up;
- total with VAT = total without VAT + total VAT (as given).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from parcours_ingest.domain.invoice import Invoice

CENT = Decimal("0.01")
# Inputs have at most 18 digits: a product has at most 36, so this precision keeps every step exact.
_EXACT_PRECISION = 80


@dataclass(frozen=True)
class Mismatch:
    """One amount that does not match what the other amounts imply."""

    path: tuple[str | int, ...]
    expected: Decimal
    given: Decimal
    rule: str

    @property
    def detail(self) -> str:
        return f"expected {self.expected} ({self.rule}), got {self.given}"


def round_half_up(value: Decimal, exponent: Decimal = CENT) -> Decimal:
    """Commercial rounding: 0.005 → 0.01."""
    return value.quantize(exponent, rounding=ROUND_HALF_UP)


def check_arithmetic(invoice: Invoice) -> list[Mismatch]:
    """Every amount of `invoice` that disagrees with its lines; empty when it adds up."""
    with localcontext() as exact:
        exact.prec = _EXACT_PRECISION
        return _mismatches(invoice)


def vat_breakdown(invoice: Invoice) -> dict[Decimal, Decimal]:
    """Taxable base per VAT rate (BG-23), from the line net amounts as given."""
    bases: dict[Decimal, Decimal] = {}
    for line in invoice.lines:
        bases[line.vat_rate] = bases.get(line.vat_rate, Decimal(0)) + line.line_total_excl_tax
    return bases


def _mismatches(invoice: Invoice) -> list[Mismatch]:
    found: list[Mismatch] = []
    for index, line in enumerate(invoice.lines):
        expected = round_half_up(line.quantity * line.unit_price)
        if line.line_total_excl_tax != expected:
            found.append(Mismatch(("lines", index, "line_total_excl_tax"), expected, line.line_total_excl_tax,
                                  "quantity × unit_price, rounded half up to 2 decimals"))

    totals = invoice.totals
    lines_sum = sum((line.line_total_excl_tax for line in invoice.lines), Decimal(0))
    if totals.total_excl_tax != lines_sum:
        found.append(Mismatch(("totals", "total_excl_tax"), lines_sum, totals.total_excl_tax,
                              "sum of the line totals"))

    tax = sum((round_half_up(base * rate / 100) for rate, base in vat_breakdown(invoice).items()), Decimal(0))
    if totals.total_tax != tax:
        found.append(Mismatch(("totals", "total_tax"), tax, totals.total_tax,
                              "sum over VAT rates of base × rate / 100, each rounded half up to 2 decimals"))

    incl = totals.total_excl_tax + totals.total_tax
    if totals.total_incl_tax != incl:
        found.append(Mismatch(("totals", "total_incl_tax"), incl, totals.total_incl_tax,
                              "total_excl_tax + total_tax"))
    return found

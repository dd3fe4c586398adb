"""Does the invoice add up? Pure Decimal arithmetic; every mismatch is reported at once.

Rules (EN 16931 business rules, with French rounding practice):
- each line net amount (BT-131) = quantity × unit price ÷ price base quantity, rounded half up
  to 2 decimals, minus the line's allowances, plus its charges;
- BT-106 = sum of the line net amounts (BR-CO-10); BT-107/BT-108 = sum of the document
  allowances/charges (BR-CO-11/12), each checked when given;
- total without VAT = BT-106 − allowances + charges (BR-CO-13);
- total VAT = sum over VAT rates of (taxable base of that rate × rate / 100), each rounded half up;
  a VAT breakdown, when given, must list exactly those bases and amounts (BR-CO-14, BR-CO-17);
- total with VAT = total without VAT + total VAT (as given) (BR-CO-15);
- amount due, when given = total with VAT − paid amount (BR-CO-16).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from parcours_ingest.domain.invoice import AllowanceCharge, InvoiceContent

CENT = Decimal("0.01")
ZERO = Decimal(0)
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


def check_arithmetic(invoice: InvoiceContent) -> list[Mismatch]:
    """Every amount of `invoice` that disagrees with its lines; empty when it adds up."""
    with localcontext() as exact:
        exact.prec = _EXACT_PRECISION
        return _mismatches(invoice)


def _net(items: list[AllowanceCharge]) -> Decimal:
    """Charges minus allowances."""
    return sum((item.amount if item.charge else -item.amount for item in items), ZERO)


def vat_breakdown(invoice: InvoiceContent) -> dict[Decimal, Decimal]:
    """Taxable base per VAT rate (BG-23), from the line net amounts as given and the document
    allowances and charges."""
    bases: dict[Decimal, Decimal] = {}
    for line in invoice.lines:
        bases[line.vat_rate] = bases.get(line.vat_rate, ZERO) + line.line_total_excl_tax
    for item in invoice.allowances_charges:
        rate = item.vat_rate if item.vat_rate is not None else ZERO
        bases[rate] = bases.get(rate, ZERO) + (item.amount if item.charge else -item.amount)
    return bases


def _mismatches(invoice: InvoiceContent) -> list[Mismatch]:
    found: list[Mismatch] = []
    for index, line in enumerate(invoice.lines):
        gross = line.quantity * line.unit_price / (line.price_base_quantity or 1)
        expected = round_half_up(gross) + _net(line.allowances_charges)
        if line.line_total_excl_tax != expected:
            rule = "quantity × unit_price, rounded half up to 2 decimals"
            if line.price_base_quantity is not None or line.allowances_charges:
                rule = "quantity × unit_price ÷ price_base_quantity, rounded half up, − allowances + charges"
            found.append(Mismatch(("lines", index, "line_total_excl_tax"), expected, line.line_total_excl_tax, rule))

    totals = invoice.totals
    lines_sum = sum((line.line_total_excl_tax for line in invoice.lines), ZERO)
    allowances = sum((i.amount for i in invoice.allowances_charges if not i.charge), ZERO)
    charges = sum((i.amount for i in invoice.allowances_charges if i.charge), ZERO)
    for field, expected, rule in (("lines_total", lines_sum, "sum of the line totals"),
                                  ("allowance_total", allowances, "sum of the document allowances"),
                                  ("charge_total", charges, "sum of the document charges")):
        given = getattr(totals, field)
        if given is not None and given != expected:
            found.append(Mismatch(("totals", field), expected, given, rule))

    excl = lines_sum - allowances + charges
    if totals.total_excl_tax != excl:
        rule = ("sum of the line totals" if not invoice.allowances_charges
                else "sum of the line totals − allowances + charges")
        found.append(Mismatch(("totals", "total_excl_tax"), excl, totals.total_excl_tax, rule))

    bases = vat_breakdown(invoice)
    tax_by_rate = {rate: round_half_up(base * rate / 100) for rate, base in bases.items()}
    tax = sum(tax_by_rate.values(), ZERO)
    if totals.total_tax != tax:
        found.append(Mismatch(("totals", "total_tax"), tax, totals.total_tax,
                              "sum over VAT rates of base × rate / 100, each rounded half up to 2 decimals"))
    if invoice.vat_breakdown is not None:
        found += _breakdown_mismatches(invoice, bases, tax_by_rate)

    incl = totals.total_excl_tax + totals.total_tax
    if totals.total_incl_tax != incl:
        found.append(Mismatch(("totals", "total_incl_tax"), incl, totals.total_incl_tax,
                              "total_excl_tax + total_tax"))
    if totals.amount_due is not None:
        due = totals.total_incl_tax - (totals.prepaid_amount or ZERO)
        if totals.amount_due != due:
            found.append(Mismatch(("totals", "amount_due"), due, totals.amount_due, "total_incl_tax − prepaid_amount"))
    return found


def _breakdown_mismatches(invoice: InvoiceContent, bases: dict[Decimal, Decimal],
                          tax_by_rate: dict[Decimal, Decimal]) -> list[Mismatch]:
    found: list[Mismatch] = []
    listed: set[Decimal] = set()
    for index, entry in enumerate(invoice.vat_breakdown or ()):
        listed.add(entry.vat_rate)
        base, tax = bases.get(entry.vat_rate, ZERO), tax_by_rate.get(entry.vat_rate, ZERO)
        if entry.taxable_amount != base:
            found.append(Mismatch(("vat_breakdown", index, "taxable_amount"), base, entry.taxable_amount,
                                  f"sum of the amounts at {entry.vat_rate} %"))
        if entry.tax_amount != tax:
            found.append(Mismatch(("vat_breakdown", index, "tax_amount"), tax, entry.tax_amount,
                                  "taxable amount × rate / 100, rounded half up to 2 decimals"))
    for rate in sorted(bases.keys() - listed):
        found.append(Mismatch(("vat_breakdown",), bases[rate], ZERO, f"an entry for the VAT rate {rate} %"))
    return found

"""Late-payment penalties under French law (Code de commerce, L441-10 and D441-5): a fixed
40 € recovery indemnity per invoice, and interest at the ECB refinancing rate plus
10 points on the open amount, pro rata temporis over 365 days."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Penalties:
    indemnity: Decimal
    interest: Decimal
    rate: Decimal          # annual rate applied, in percent
    days_late: int
    base: Decimal          # the open amount the interest runs on
    currency: str

    def describe(self) -> str:
        return (f"late-payment penalties: indemnity {self.indemnity} {self.currency}, interest {self.interest} "
                f"{self.currency} ({self.rate} % a year on {self.base} {self.currency} for {self.days_late} days)")


def rate_in_force(rates: Mapping[date, Decimal], on: date) -> Decimal:
    """The ECB rate of the table's latest entry on or before `on` (the earliest entry if none)."""
    if not rates:
        raise ValueError("the ECB rate table is empty")
    eligible = [day for day in rates if day <= on]
    return rates[max(eligible) if eligible else min(rates)]


def late_payment_penalties(*, open_amount: Decimal, currency: str, due_date: date, on: date,
                           ecb_rates: Mapping[date, Decimal], margin_points: Decimal = Decimal(10),
                           indemnity: Decimal = Decimal(40)) -> Penalties:
    """What the customer owes on `on` for paying late: nothing before the day after the due date."""
    days_late = max((on - due_date).days, 0)
    # the rate in force on 1 January or 1 July of the half-year the payment fell due in
    half_year = date(due_date.year, 1 if due_date.month <= 6 else 7, 1)
    rate = rate_in_force(ecb_rates, half_year) + margin_points
    base = max(open_amount, Decimal(0))
    interest = (base * rate / 100 * days_late / 365).quantize(CENT, rounding=ROUND_HALF_UP)
    return Penalties(indemnity=indemnity.quantize(CENT) if days_late else Decimal("0.00"), interest=interest,
                     rate=rate, days_late=days_late, base=base, currency=currency)

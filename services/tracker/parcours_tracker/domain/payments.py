"""Payments of an invoice, whoever reports them (the ERP through the API, a bank statement):
what a new report means against what was already recorded. No IO."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

TRANSMITTED, RECEIVED = "transmitted", "received"
_NOT_KEY = re.compile(r"[^A-Z0-9]")


def number_key(text: str) -> str:
    """An invoice number as remittance information quotes it: upper case, letters and digits only
    ("F-2026/001" and "f 2026 001" are both F2026001)."""
    return _NOT_KEY.sub("", text.upper())


class PaymentRefused(Exception):
    """A payment report that cannot be taken; `status` is the HTTP status that says why."""

    def __init__(self, status: int, detail: str, *, slug: str | None = None, field: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.slug, self.field = status, detail, slug, field


@dataclass(frozen=True)
class PaymentReport:
    """A payment of (part of) an invoice as its reporter knows it; `payment_id` makes retries safe."""

    payment_id: str
    amount: Decimal
    paid_on: date
    currency: str | None = None  # None: the invoice's
    reference: str | None = None
    status: Literal["transmitted", "received"] = RECEIVED


@dataclass(frozen=True)
class Earlier:
    """A payment already recorded under the same payment id."""

    invoice_matches: bool
    amount: Decimal
    currency: str
    paid_on: date
    reference: str | None
    status: str


@dataclass(frozen=True)
class Verdict:
    """What to do with a report: nothing (an identical retry), record it, or confirm a transmitted one."""

    action: Literal["duplicate", "record", "confirm"]
    paid: Decimal  # all payments of the invoice, after this one
    received: Decimal  # the received ones, after this one
    total: Decimal

    @property
    def open_amount(self) -> Decimal:
        return self.total - self.paid

    @property
    def fully_paid(self) -> bool:
        return self.paid >= self.total


def judge(report: PaymentReport, *, total: Decimal, currency: str, paid: Decimal, received: Decimal,
          earlier: Earlier | None) -> Verdict:
    """The verdict on `report` for an invoice of `total` `currency` with `paid` (of which `received`)
    recorded so far; raises PaymentRefused (409 reused id, 422 other currency or more than open)."""
    if report.currency is not None and report.currency != currency:
        raise PaymentRefused(422, f"the invoice is in {currency}", field="currency")
    if earlier is not None:
        same = (earlier.amount, earlier.currency, earlier.paid_on, earlier.reference, earlier.status) == \
            (report.amount, currency, report.paid_on, report.reference, report.status)
        if earlier.invoice_matches and same:
            return Verdict("duplicate", paid, received, total)
        confirms = (earlier.invoice_matches and earlier.status == TRANSMITTED and report.status == RECEIVED
                    and (earlier.amount, earlier.paid_on) == (report.amount, report.paid_on))
        if not confirms:
            raise PaymentRefused(409, f"payment_id {report.payment_id!r} was already recorded with another body.",
                                 slug="payment-id-reused")
        return Verdict("confirm", paid, received + report.amount, total)
    if report.amount > total - paid:
        raise PaymentRefused(422, f"more than the open amount ({total - paid} {currency})", field="amount")
    return Verdict("record", paid + report.amount, received + (report.amount if report.status == RECEIVED else 0),
                   total)

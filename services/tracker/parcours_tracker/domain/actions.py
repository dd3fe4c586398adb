"""What a recipient action must carry, wherever it comes from (the API or the portal's events)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from parcours_tracker.domain.journal import RECIPIENT_ACTIONS

NEEDS_REASON = ("disputed", "suspended", "refused")
PROMISE = "promise_to_pay"


PROMISED_RANGE = (date(2000, 1, 1), date(2099, 12, 31))


def action_error(kind: str, *, reason: str | None, promised_on: date | None,
                 amount: Decimal | None) -> tuple[str, str] | None:
    """(field, what is wrong) when the action cannot be recorded as given; None when it can."""
    if kind not in RECIPIENT_ACTIONS:
        return "kind", f"unknown recipient action {kind!r}"
    if kind in NEEDS_REASON and not reason:
        return "reason", f"a reason is required for {kind}"
    if kind == PROMISE and promised_on is None:
        return "promised_on", "a promise to pay needs promised_on"
    if kind != PROMISE and promised_on is not None:
        return "promised_on", "only a promise to pay has promised_on"
    if promised_on is not None and not PROMISED_RANGE[0] <= promised_on <= PROMISED_RANGE[1]:
        return "promised_on", "a promised date is between 2000 and 2099"  # dunning defers reminders to it
    if amount is not None and kind not in (PROMISE, "partially_approved"):
        return "amount", "only a promise to pay or a partial approval has an amount"
    return None

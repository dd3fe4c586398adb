"""Business rules beyond the schema and the arithmetic: French identifiers carry a Luhn check
digit, and the dates must make sense. Pure; `today` is given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from parcours_ingest.domain.invoice import InvoiceContent

# La Poste's establishments share SIREN 356000000; their SIRETs use a digit-sum rule instead of Luhn.
_LA_POSTE_SIREN = "356000000"
# an ERP in another time zone may already be on tomorrow's date
ISSUE_DATE_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True)
class RuleViolation:
    path: tuple[str | int, ...]
    detail: str
    code: str


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check that SIREN and SIRET numbers satisfy."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def siren_valid(siren: str) -> bool:
    return len(siren) == 9 and siren.isdigit() and luhn_valid(siren)


def siret_valid(siret: str) -> bool:
    if len(siret) != 14 or not siret.isdigit():
        return False
    if siret.startswith(_LA_POSTE_SIREN) and sum(int(c) for c in siret) % 5 == 0:
        return True
    return luhn_valid(siret)


def identifier_violations(invoice: InvoiceContent) -> list[RuleViolation]:
    """SIREN/SIRET numbers whose check digit is wrong, or a SIRET outside its party's SIREN."""
    found = []
    for role in ("seller", "buyer"):
        party = getattr(invoice, role)
        if party.siren is not None and not siren_valid(party.siren):
            found.append(RuleViolation((role, "siren"), f"{party.siren} is not a valid SIREN (Luhn check digit)",
                                       "invalid-siren"))
        if party.siret is not None:
            if not siret_valid(party.siret):
                found.append(RuleViolation((role, "siret"), f"{party.siret} is not a valid SIRET (check digit)",
                                           "invalid-siret"))
            elif party.siren is not None and siren_valid(party.siren) and not party.siret.startswith(party.siren):
                found.append(RuleViolation((role, "siret"), f"the SIRET {party.siret} is not an establishment of "
                                                            f"SIREN {party.siren}", "siret-siren-mismatch"))
    return found


def date_violations(invoice: InvoiceContent, *, today: date) -> list[RuleViolation]:
    """An issue date in the future (beyond a day of clock skew); due ≥ issue is the schema's."""
    latest = today + ISSUE_DATE_TOLERANCE
    if invoice.issue_date > latest:
        return [RuleViolation(("issue_date",), f"the issue date {invoice.issue_date.isoformat()} is in the future "
                                               f"(latest accepted: {latest.isoformat()})", "issue-date-in-future")]
    return []

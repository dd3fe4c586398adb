"""How an invoice reads in a message: amounts, dates, reminder tone, stable identifiers.
Written by hand rather than with `locale`, which is process-global and rarely installed."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from uuid import UUID

from parcours_contracts import ReminderInfo

Language = Literal["fr", "en"]
Tone = Literal["gentle", "firm", "final"]

SUPPORTED_LANGUAGES: tuple[Language, ...] = ("fr", "en")
# DispatchRequested carries no language yet: every message goes out in French until it does.
DEFAULT_LANGUAGE: Language = "fr"

_MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
_NBSP = "\u00a0"
_FINAL_STEP_WORDS = ("final", "last", "formal", "demeure")


def language_or_default(language: str | None) -> Language:
    """The language asked for if we have templates for it, else the default."""
    return language if language in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE  # type: ignore[return-value]


def format_amount(amount: Decimal, currency: str, language: Language) -> str:
    """`1 234,50 EUR` in French, `1,234.50 EUR` in English (no-break spaces keep it on one line)."""
    grouped = f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"
    if language == "fr":
        grouped = grouped.replace(",", _NBSP).replace(".", ",")
    return f"{grouped}{_NBSP}{currency}"


def format_rate(rate: Decimal, language: Language) -> str:
    """`12,15 %` in French, `12.15%` in English."""
    figure = f"{rate.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):.2f}"
    return f"{figure.replace('.', ',')}{_NBSP}%" if language == "fr" else f"{figure}%"


def format_date(day: date, language: Language) -> str:
    """`1er décembre 2026` in French, `1 December 2026` in English."""
    month = _MONTHS[language][day.month - 1]
    if language == "fr":
        return f"{'1er' if day.day == 1 else day.day} {month} {day.year}"
    return f"{day.day} {month} {day.year}"


def reminder_tone(reminder: ReminderInfo | None) -> Tone:
    """How insistent a reminder sounds: by the step's name when it says so, else by its rank."""
    if reminder is None:
        return "gentle"
    if _says_final(reminder.step) or reminder.sequence >= 3:
        return "final"
    return "firm" if reminder.sequence == 2 else "gentle"


def _says_final(step: str) -> bool:
    return any(word in step.lower() for word in _FINAL_STEP_WORDS)


def recipient_key(email: str) -> str:
    """One key per mailbox, whatever the case the address was written in."""
    return email.strip().lower()


def message_id_for(dispatch_id: UUID, email: str, domain: str) -> str:
    """The Message-ID of the one message a dispatch sends a recipient: the same on every retry."""
    digest = hashlib.sha1(recipient_key(email).encode()).hexdigest()[:12]  # = verp.recipient_digest, in hex
    return f"<{dispatch_id}.{digest}@{domain}>"


def one_line(text: str) -> str:
    """Collapse whitespace, line breaks included: a header value must never carry a newline."""
    return " ".join(text.split())

"""How an invoice reads in a message: amounts, dates and rates in the customer's locale
(Babel, CLDR data), reminder tone, stable identifiers."""

from __future__ import annotations

import copy
import hashlib
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Literal
from uuid import UUID

from babel import Locale
from babel.dates import format_date as babel_date
from babel.numbers import NumberPattern, format_decimal, get_currency_precision, get_currency_symbol

from parcours_contracts import ReminderInfo

Language = Literal["fr", "en"]
Tone = Literal["gentle", "firm", "final"]

SUPPORTED_LANGUAGES: tuple[Language, ...] = ("fr", "en")
# A dispatch without the customer's language goes out in French.
DEFAULT_LANGUAGE: Language = "fr"
# The locale each language is written in: French invoices are French, English ones British-style dates.
LOCALES: dict[Language, str] = {"fr": "fr_FR", "en": "en_GB"}
# Parsed once: babel parses a locale name on every call otherwise (a third of formatting an amount).
_LOCALES: dict[Language, Locale] = {language: Locale.parse(name) for language, name in LOCALES.items()}
_FINAL_STEP_WORDS = ("final", "last", "formal", "demeure")


def language_or_default(language: str | None) -> Language:
    """The language asked for if we have templates for it, else the default."""
    return language if language in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE  # type: ignore[return-value]


def format_amount(amount: Decimal, currency: str, language: Language) -> str:
    """`1 234,50 €` in French, `€1,234.50` in English; half-up to the currency's minor unit. What Babel's
    format_currency writes, from the locale's pattern set to the currency's digits once per currency:
    format_currency looks the currency's symbol and plural name up again on every call (half its time)."""
    pattern, symbol, step = _currency_pattern(currency, language)
    rounded = amount.quantize(step, rounding=ROUND_HALF_UP)
    return pattern.apply(rounded, _LOCALES[language]).replace("¤", symbol)


@lru_cache(maxsize=256)
def _currency_pattern(currency: str, language: Language) -> tuple[NumberPattern, str, Decimal]:
    """The locale's standard currency pattern with the currency's minor unit, its symbol there, and that unit."""
    digits = get_currency_precision(currency)
    pattern = copy.copy(_LOCALES[language].currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return pattern, get_currency_symbol(currency, _LOCALES[language]), Decimal(1).scaleb(-digits)


def format_rate(rate: Decimal, language: Language) -> str:
    """`12,15 %` in French, `12.15%` in English (the rate is in percent)."""
    figure = format_decimal(rate.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), format="#,##0.00",
                            locale=_LOCALES[language])
    return f"{figure}\u00a0%" if language == "fr" else f"{figure}%"


@lru_cache(maxsize=4096)  # an invoice's dates are those of many others
def format_date(day: date, language: Language) -> str:
    """`1 décembre 2026` in French, `1 December 2026` in English."""
    return babel_date(day, format="long", locale=_LOCALES[language])


def reminder_tone(reminder: ReminderInfo | None) -> Tone:
    """How insistent a reminder sounds: as dunning chose when it did, else by the step's name when it
    says so, else by its rank."""
    if reminder is None:
        return "gentle"
    if reminder.tone is not None:
        return reminder.tone
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

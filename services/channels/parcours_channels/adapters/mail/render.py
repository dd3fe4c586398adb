"""Invoice and reminder emails rendered from Jinja2 templates, one folder per language: the
package's own, or a tenant's override of any of them. Every template runs sandboxed (a tenant's
is untrusted code) and HTML autoescapes: seller and buyer names come from the tenant's ERP."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from jinja2 import ChoiceLoader, DictLoader, PackageLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from parcours_channels.domain.wording import (
    format_amount,
    format_date,
    format_rate,
    language_or_default,
    one_line,
    reminder_tone,
)
from parcours_contracts import InvoiceSummary, Penalties, ReminderInfo

# What a tenant may override, per language, and the package template each part replaces.
TEMPLATE_PARTS = {"subject": "subject.txt.j2", "body_text": "body.txt.j2", "body_html": "body.html.j2"}
DEFAULT_COLOR = "#1f6feb"
DEFAULT_TEXT_COLOR = "#1f2933"
LOGO_CID = "logo@parcours"
RANGE_MAX = 1000

# (template name, source) pairs of a tenant's overrides, sorted: hashable, so environments are cached by them
Overrides = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    language: str


@dataclass(frozen=True)
class Brand:
    """How a tenant's messages look; every field optional (the seller's name and our colours)."""
    name: str | None = None
    logo_src: str | None = None  # an https URL, or f"cid:{LOGO_CID}" when the logo travels inline
    primary_color: str | None = None  # "#rrggbb", validated before it is stored
    text_color: str | None = None
    signature: str | None = None


def template_name(language: str, part: str) -> str:
    return f"{language}/{TEMPLATE_PARTS[part]}"


def _short_range(*args: int) -> range:
    """`range` in templates: a tenant's template has no business looping thousands of times."""
    numbers = range(*args)
    if len(numbers) > RANGE_MAX:
        raise OverflowError(f"range() of more than {RANGE_MAX} items")
    return numbers


@lru_cache(maxsize=256)
def _environment(overrides: Overrides = ()) -> ImmutableSandboxedEnvironment:
    package = PackageLoader("parcours_channels.adapters.mail", "templates")
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader([DictLoader(dict(overrides)), package]) if overrides else package,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",),
                                     default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # shipped with the code, or part of the cache key (overrides): no mtime checks per mail
    )
    env.globals["range"] = _short_range
    return env


def render_email(*, invoice: InvoiceSummary, purpose: Literal["invoice", "reminder"], reminder: ReminderInfo | None,
                 link: str, recipient_name: str | None = None, language: str | None = None,
                 penalties: Penalties | None = None, brand: Brand | None = None,
                 overrides: Overrides = ()) -> RenderedEmail:
    """Subject, plain text and HTML of the message telling a recipient about an invoice (or reminding them)."""
    lang = language_or_default(language)
    brand = brand or Brand()
    seller = one_line(invoice.seller_name)
    values = {
        "purpose": purpose,
        "tone": reminder_tone(reminder) if purpose == "reminder" else None,
        "reminder": reminder,
        "number": invoice.number,
        "seller": seller,
        "buyer": one_line(invoice.buyer_name),
        "amount": format_amount(invoice.total_incl_tax, invoice.currency, lang),
        "issue_date": format_date(invoice.issue_date, lang),
        "due_date": format_date(invoice.due_date, lang),
        "recipient_name": one_line(recipient_name) if recipient_name else None,
        "link": link,
        # a curative reminder states what paying late costs (French law requires it be stated)
        "penalties": {
            "indemnity": format_amount(penalties.indemnity, invoice.currency, lang),
            "interest": format_amount(penalties.interest, invoice.currency, lang),
            "rate": format_rate(penalties.rate, lang),
        } if penalties is not None and purpose == "reminder" else None,
        # other overdue invoices this reminder covers too (dunning's grouping), with what remains due on each
        "grouped": [{"number": g.number, "due_date": format_date(g.due_date, lang),
                     "amount": format_amount(g.open_amount, g.currency, lang)}
                    for g in reminder.grouped] if reminder is not None and purpose == "reminder" else [],
        "language": lang,
        "brand": {
            "name": one_line(brand.name) if brand.name else seller,
            "logo_src": brand.logo_src,
            "color": brand.primary_color or DEFAULT_COLOR,
            "text_color": brand.text_color or DEFAULT_TEXT_COLOR,
        },
        "signature": [line.strip() for line in brand.signature.splitlines() if line.strip()]
                     if brand.signature else [seller],
    }
    env = _environment(overrides)
    return RenderedEmail(
        subject=one_line(env.get_template(template_name(lang, "subject")).render(values)),
        text=env.get_template(template_name(lang, "body_text")).render(values),
        html=env.get_template(template_name(lang, "body_html")).render(values),
        language=lang,
    )

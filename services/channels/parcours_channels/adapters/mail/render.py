"""Invoice and reminder emails rendered from the package's Jinja2 templates, one folder per
language. HTML templates autoescape: seller and buyer names come from the tenant's ERP."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from parcours_channels.domain.wording import (
    format_amount,
    format_date,
    format_rate,
    language_or_default,
    one_line,
    reminder_tone,
)
from parcours_contracts import InvoiceSummary, Penalties, ReminderInfo


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    language: str


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("parcours_channels.adapters.mail", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",),
                                     default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(*, invoice: InvoiceSummary, purpose: Literal["invoice", "reminder"], reminder: ReminderInfo | None,
                 link: str, recipient_name: str | None = None, language: str | None = None,
                 penalties: Penalties | None = None) -> RenderedEmail:
    """Subject, plain text and HTML of the message telling a recipient about an invoice (or reminding them)."""
    lang = language_or_default(language)
    values = {
        "purpose": purpose,
        "tone": reminder_tone(reminder) if purpose == "reminder" else None,
        "reminder": reminder,
        "number": invoice.number,
        "seller": one_line(invoice.seller_name),
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
        "language": lang,
    }
    env = _environment()
    return RenderedEmail(
        subject=one_line(env.get_template(f"{lang}/subject.txt.j2").render(values)),
        text=env.get_template(f"{lang}/body.txt.j2").render(values),
        html=env.get_template(f"{lang}/body.html.j2").render(values),
        language=lang,
    )

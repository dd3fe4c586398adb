"""A tenant's template override is accepted only if it renders: every purpose and reminder tone,
in its language, against sample data, in the sandbox, with the tracked link in each body."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from importlib.resources import files
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SecurityError

from parcours_channels.adapters.mail.render import TEMPLATE_PARTS, Brand, Overrides, render_email, template_name
from parcours_contracts import InvoiceSummary, Penalties, ReminderInfo
from parcours_runtime.problems import field_error

SAMPLE_LINK = "https://track.parcours.example/l/sample-token"
SUBJECT_MAX = 200
_SAMPLE_INVOICE = InvoiceSummary(
    number="F-2026-0001", issue_date=date(2026, 11, 2), due_date=date(2026, 12, 2), currency="EUR",
    total_excl_tax=Decimal("1000.00"), total_tax=Decimal("200.00"), total_incl_tax=Decimal("1200.00"),
    seller_name="Ateliers Exemple SAS", buyer_name="Client Exemple SARL", customer_ref="C-1")
_SAMPLE_PENALTIES = Penalties(indemnity=Decimal("40.00"), interest=Decimal("12.34"), rate=Decimal("12.15"),
                              days_late=30, base=Decimal("1200.00"))
# (purpose, reminder, penalties, recipient name): what a template meets in production
_SAMPLES = (
    ("invoice", None, None, "Jeanne Martin"),
    ("invoice", None, None, None),
    ("reminder", ReminderInfo(strategy="default", step="gentle", sequence=1), None, "Jeanne Martin"),
    ("reminder", ReminderInfo(strategy="default", step="firm", sequence=2), _SAMPLE_PENALTIES, None),
    ("reminder", ReminderInfo(strategy="default", step="final", sequence=3), _SAMPLE_PENALTIES, "Jeanne Martin"),
)
_SAMPLE_BRANDS = (None, Brand(name="Exemple", logo_src="https://cdn.example/logo.png", primary_color="#123456",
                              text_color="#000000", signature="Service facturation\nExemple SAS"))


def override_errors(*, language: str, part: str, source: str, others: Overrides) -> list[dict[str, Any]]:
    """Field errors (JSON pointer /source) of a candidate override, [] when it is acceptable."""
    name = template_name(language, part)
    overrides: Overrides = tuple(sorted({**dict(others), name: source}.items()))
    for purpose, reminder, penalties, recipient_name in _SAMPLES:
        for brand in _SAMPLE_BRANDS:
            try:
                rendered = render_email(invoice=_SAMPLE_INVOICE, purpose=purpose, reminder=reminder, link=SAMPLE_LINK,
                                        recipient_name=recipient_name, language=language, penalties=penalties,
                                        brand=brand, overrides=overrides)
            except TemplateSyntaxError as exc:
                return [field_error(["source"], f"line {exc.lineno}: {exc.message}", "template_syntax")]
            except UndefinedError as exc:
                return [field_error(["source"], f"{exc.message} (rendering a {purpose})", "template_undefined")]
            except SecurityError as exc:
                return [field_error(["source"], str(exc), "template_unsafe")]
            except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
                return [field_error(["source"], f"{type(exc).__name__}: {exc} (rendering a {purpose})",
                                    "template_error")]
            if part == "subject" and not 0 < len(rendered.subject) <= SUBJECT_MAX:
                return [field_error(["source"], f"the subject must render to 1–{SUBJECT_MAX} characters",
                                    "subject_length")]
            body = {"body_text": rendered.text, "body_html": rendered.html}.get(part)
            if body is not None and SAMPLE_LINK not in body:
                return [field_error(["source"], "the body must show the tracked link: {{ link }}", "link_missing")]
    return []


def package_source(language: str, part: str) -> str:
    """The package's own template, the starting point of an override."""
    return (files("parcours_channels.adapters.mail") / "templates" / language / TEMPLATE_PARTS[part]).read_text("utf-8")

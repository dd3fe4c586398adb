"""Rendering, composing and the rules behind them, without a broker: templates, escaping,
wording, stable Message-IDs, the adapter registry, settings."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from pydantic import ValidationError

from parcours_channels.adapters.mail.compose import Attachment, compose_message
from parcours_channels.adapters.mail.profile import InlineImage
from parcours_channels.adapters.mail.render import render_email
from parcours_channels.adapters.registry import load_adapters
from parcours_channels.config import Settings
from parcours_channels.domain.wording import format_amount, format_date, format_rate, message_id_for, reminder_tone
from parcours_contracts import GroupedInvoice, InvoiceSummary, Penalties, Recipient, ReminderInfo

LINK = "https://track.example/l/abc.def"


def invoice(**overrides) -> InvoiceSummary:
    values = dict(number="INV-7", issue_date=date(2026, 3, 1), due_date=date(2026, 3, 31), currency="USD",
                  total_excl_tax=Decimal("10000"), total_tax=Decimal("2000"), total_incl_tax=Decimal("12000.005"),
                  seller_name="Northwind Ltd", buyer_name="Contoso", customer_ref="C-1")
    return InvoiceSummary(**{**values, **overrides})


def test_english_invoice_and_final_reminder_render_in_english():
    rendered = render_email(invoice=invoice(), purpose="invoice", reminder=None, link=LINK,
                            recipient_name="Ann Lee", language="en")
    assert rendered.subject == "Invoice INV-7 from Northwind Ltd"
    assert rendered.text.startswith("Dear Ann Lee,")
    assert "for US$12,000.01, payable by 31 March 2026." in rendered.text
    assert LINK in rendered.text and f'href="{LINK}"' in rendered.html
    assert '<html lang="en">' in rendered.html and "View the invoice" in rendered.html

    final = render_email(invoice=invoice(), purpose="reminder", link=LINK, language="en",
                         reminder=ReminderInfo(strategy="default", step="final", sequence=3))
    assert final.subject == "Reminder: invoice INV-7 from Northwind Ltd – final reminder"
    assert final.text.startswith("Hello,")
    assert "Final reminder:" in final.text and "please disregard this message" in final.text


def test_penalties_are_stated_in_reminders_only_in_the_customer_language():
    penalties = Penalties(indemnity=Decimal("40.00"), interest=Decimal("1234.5"), rate=Decimal("12.15"),
                          days_late=12, base=Decimal("12000"))
    step = ReminderInfo(strategy="default", step="curative_1", sequence=3)
    english = render_email(invoice=invoice(), purpose="reminder", reminder=step, link=LINK, language="en",
                           penalties=penalties)
    line = "Fixed recovery indemnity: US$40.00; late-payment interest: US$1,234.50 (rate 12.15%)"
    assert line in english.text
    assert "late-payment interest: <strong>US$1,234.50</strong> (rate 12.15%)" in english.html
    french = render_email(invoice=invoice(), purpose="reminder", reminder=step, link=LINK, penalties=penalties)
    assert ("intérêts de retard : 1\u202f234,50\u00a0$US (taux 12,15\u00a0%)") in french.text
    plain = render_email(invoice=invoice(), purpose="invoice", reminder=None, link=LINK, penalties=penalties)
    assert "Indemnité" not in plain.text and "Indemnité" not in plain.html, "an invoice email states none"


def test_french_is_the_default_and_unknown_languages_fall_back_to_it():
    for language in (None, "de"):
        rendered = render_email(invoice=invoice(), purpose="invoice", reminder=None, link=LINK, language=language)
        assert rendered.language == "fr"
        assert rendered.subject == "Facture INV-7 de Northwind Ltd"
        assert "12\u202f000,01\u00a0$US" in rendered.text and "31 mars 2026" in rendered.text


def test_a_hostile_seller_name_is_escaped_in_html_and_cannot_inject_headers():
    hostile = '<script>alert("x")</script>\r\nBcc: victim@evil.example'
    rendered = render_email(invoice=invoice(seller_name=hostile), purpose="invoice", reminder=None, link=LINK)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in rendered.html
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    wire = compose_message(rendered=rendered, sender="Parcours <p@parcours.example>",
                           recipient=Recipient(email="ann@contoso.example"), message_id="<m@x>").wire
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["To"] == "ann@contoso.example"
    headers = wire.split(b"\r\n\r\n", 1)[0]
    assert not any(line.startswith(b"Bcc:") for line in headers.split(b"\r\n"))


def test_amounts_and_dates_read_naturally_in_the_customer_locale():
    # CLDR (Babel): French groups with a narrow no-break space and puts the symbol after a no-break space.
    assert format_amount(Decimal("1234.5"), "EUR", "fr") == "1\u202f234,50\u00a0€"
    assert format_amount(Decimal("-0.125"), "EUR", "en") == "-€0.13", "half up, to the cent"
    assert format_amount(Decimal("1000000"), "GBP", "en") == "£1,000,000.00"
    assert format_amount(Decimal("1234.5"), "JPY", "fr") == "1\u202f235\u00a0JPY", "the currency's own minor unit"
    assert format_rate(Decimal("12.15"), "fr") == "12,15\u00a0%" and format_rate(Decimal("8"), "en") == "8.00%"
    assert format_date(date(2026, 12, 1), "fr") == "1 décembre 2026"
    assert format_date(date(2026, 8, 15), "fr") == "15 août 2026"
    assert format_date(date(2026, 8, 15), "en") == "15 August 2026"


@pytest.mark.parametrize("currency", ["EUR", "USD", "GBP", "JPY", "CHF", "KWD", "XOF", "CLP", "XYZ"])
@pytest.mark.parametrize("language", ["fr", "en"])
def test_amounts_read_exactly_as_babels_format_currency_writes_them(currency, language):
    """format_amount keeps the locale's pattern set to the currency's digits instead of calling format_currency:
    the same text, every sign, size and rounding edge (half up)."""
    import random

    from babel.numbers import format_currency, get_currency_precision

    from parcours_channels.domain.wording import LOCALES

    draw = random.Random(f"{currency}-{language}")
    amounts = [Decimal("0"), Decimal("-0.005"), Decimal("0.005"), Decimal("0.5"), Decimal("999999.995"),
               *(Decimal(draw.randint(-10**12, 10**12)).scaleb(-draw.randint(0, 6)) for _ in range(300))]
    unit = Decimal(1).scaleb(-get_currency_precision(currency))
    for amount in amounts:
        rounded = amount.quantize(unit, rounding=ROUND_HALF_UP)
        assert format_amount(amount, currency, language) == format_currency(rounded, currency, locale=LOCALES[language])


@pytest.mark.parametrize(("step", "sequence", "tone"), [
    ("courtesy", 1, "gentle"), ("second", 2, "firm"), ("third", 3, "final"), ("final-notice", 1, "final"),
    ("LAST", 2, "final"),
])
def test_reminder_tone_follows_the_step_name_then_its_rank(step, sequence, tone):
    assert reminder_tone(ReminderInfo(strategy="s", step=step, sequence=sequence)) == tone


@pytest.mark.parametrize(("step", "sequence", "chosen"), [
    ("courtesy", 1, "final"), ("final-notice", 3, "gentle"), ("second", 2, "firm"),
])
def test_the_tone_dunning_chose_wins_over_the_step_name_and_rank(step, sequence, chosen):
    reminder = ReminderInfo(strategy="s", step=step, sequence=sequence, tone=chosen)
    assert reminder_tone(reminder) == chosen
    rendered = render_email(invoice=invoice(), purpose="reminder", reminder=reminder, link=LINK, language="en")
    opening = {"gentle": "Our records show", "firm": "Despite our previous reminder", "final": "Final reminder:"}
    assert opening[chosen] in rendered.text and opening[chosen] in rendered.html
    assert all(words not in rendered.text for tone, words in opening.items() if tone != chosen)


def grouped_reminder(*numbers: str) -> ReminderInfo:
    return ReminderInfo(strategy="s", step="second", sequence=2, grouped=[
        GroupedInvoice(invoice_id=uuid.uuid4(), number=number, issue_date=date(2026, 1, 5), due_date=date(2026, 2, 4),
                       currency="EUR", open_amount=Decimal("1500.5") + i)
        for i, number in enumerate(numbers)])


def test_a_grouped_reminder_lists_the_other_overdue_invoices_with_what_remains_due():
    reminder = grouped_reminder("F-2026-0007", "F-2026-0011")
    french = render_email(invoice=invoice(), purpose="reminder", reminder=reminder, link=LINK)
    assert "Ce rappel concerne aussi les factures suivantes, également échues :" in french.text
    assert "- F-2026-0007, échue le 4 février 2026 : 1\u202f500,50\u00a0€ restant dû" in french.text
    assert "- F-2026-0011, échue le 4 février 2026 : 1\u202f501,50\u00a0€ restant dû" in french.text
    assert "F-2026-0011</td>" in french.html and "<strong>1\u202f501,50\u00a0€</strong>" in french.html
    assert "Restant dû" in french.html

    english = render_email(invoice=invoice(), purpose="reminder", reminder=grouped_reminder("F-9"), link=LINK,
                           language="en")
    assert "This reminder also covers this other overdue invoice:" in english.text
    assert "- F-9, due on 4 February 2026: €1,500.50 outstanding" in english.text
    assert "F-9</td>" in english.html and "Outstanding" in english.html


def test_a_reminder_without_grouping_lists_nothing_and_hostile_numbers_are_escaped():
    alone = render_email(invoice=invoice(), purpose="reminder", link=LINK,
                         reminder=ReminderInfo(strategy="s", step="second", sequence=2))
    assert "concerne aussi" not in alone.text and "concerne aussi" not in alone.html
    hostile = render_email(invoice=invoice(), purpose="reminder", reminder=grouped_reminder("<b>F-1</b>"), link=LINK)
    assert "<b>F-1</b>" not in hostile.html and "&lt;b&gt;F-1&lt;/b&gt;" in hostile.html


def test_message_ids_are_stable_per_dispatch_and_mailbox_and_never_folded():
    dispatch, other = uuid.uuid4(), uuid.uuid4()
    first = message_id_for(dispatch, "Ann@Contoso.example", "parcours.localhost")
    assert first == message_id_for(dispatch, "ann@contoso.example", "parcours.localhost")
    assert first != message_id_for(dispatch, "bob@contoso.example", "parcours.localhost")
    assert first != message_id_for(other, "ann@contoso.example", "parcours.localhost")

    long_id = message_id_for(dispatch, "ann@contoso.example", "mail.a-rather-long-subdomain.parcours.example.com")
    rendered = render_email(invoice=invoice(), purpose="invoice", reminder=None, link=LINK)
    wire = compose_message(rendered=rendered, sender="p@parcours.example",
                           recipient=Recipient(email="ann@contoso.example"), message_id=long_id).wire
    assert f"\r\nMessage-ID: {long_id}\r\n".encode() in wire
    others = [line for line in wire.split(b"\r\n") if not line.startswith(b"Message-ID:")]
    assert max(len(line) for line in others) <= 78, "everything else stays within 78 columns"


def test_an_attachment_wraps_the_alternative_in_multipart_mixed():
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n%%EOF\n"
    rendered = render_email(invoice=invoice(), purpose="invoice", reminder=None, link=LINK)
    message = compose_message(rendered=rendered, sender="p@parcours.example", message_id="<m@x>",
                              recipient=Recipient(email="ann@contoso.example"),
                              attachment=Attachment(filename="INV-7.pdf", content=pdf))
    parsed = email.message_from_bytes(message.wire, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert LINK in parsed.get_body(("plain",)).get_content()
    (attached,) = parsed.iter_attachments()
    assert (attached.get_filename(), attached.get_content_type(), attached.get_content()) == (
        "INV-7.pdf", "application/pdf", pdf)


def test_logo_and_attachment_nest_as_mixed_alternative_related_and_the_wire_stays_7bit_within_78_columns():
    pdf, png = b"%PDF-1.7\n" + bytes(range(256)) * 3, b"\x89PNG\r\n\x1a\n" + bytes(200)
    rendered = render_email(invoice=invoice(seller_name="Société Générale"), purpose="invoice", reminder=None,
                            link=LINK, language="fr")
    message = compose_message(rendered=rendered, sender="Société Générale <factures@sg.example>", message_id="<m@x>",
                              recipient=Recipient(email="ann@contoso.example", name="Zoë"),
                              attachment=Attachment(filename="Facture n° F-1 — échéance.pdf", content=pdf),
                              logo=InlineImage("image/png", png))
    assert (message.sender, message.recipient) == ("factures@sg.example", "ann@contoso.example")
    wire = message.wire
    assert wire.isascii() and b"\n" not in wire.replace(b"\r\n", b"")
    assert max(len(line) for line in wire.split(b"\r\n")) <= 78

    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert not parsed.defects and all(not part.defects for part in parsed.walk())
    assert [part.get_content_type() for part in parsed.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
        "application/pdf"]
    assert (parsed["From"], parsed["To"], parsed["Content-Language"], parsed["MIME-Version"]) == (
        "Société Générale <factures@sg.example>", "Zoë <ann@contoso.example>", "fr", "1.0")
    assert parsed.get_body(("html",)).get_content().replace("\r\n", "\n") == "\n".join(rendered.html.splitlines()) + "\n"
    logo = next(part for part in parsed.walk() if part.get_content_type() == "image/png")
    assert (logo["Content-ID"], logo.get_content_disposition(), logo.get_content()) == ("<logo@parcours>", "inline", png)
    (attached,) = parsed.iter_attachments()
    assert (attached.get_filename(), attached.get_content()) == ("Facture n° F-1 — échéance.pdf", pdf)


def test_a_message_reads_its_headers_back_and_a_bad_media_type_is_refused():
    rendered = render_email(invoice=invoice(), purpose="invoice", reminder=None, link=LINK, language="en")
    message = compose_message(rendered=rendered, sender="p@parcours.example", message_id="<m@x>",
                              recipient=Recipient(email="ann@contoso.example"))
    assert message["Subject"] == "Invoice INV-7 from Northwind Ltd" and message["Message-ID"] == "<m@x>"
    with pytest.raises(ValueError, match="not a media type"):
        compose_message(rendered=rendered, sender="p@parcours.example", message_id="<m@x>",
                        recipient=Recipient(email="ann@contoso.example"),
                        logo=InlineImage("image/png\r\nBcc: victim@evil.example", b"x"))


def test_the_bodies_read_back_exactly_as_rendered_in_quoted_printable_lines_of_76_at_most():
    rendered = dataclasses.replace(
        render_email(invoice=invoice(seller_name="Société Générale d'Équipement = 100 %"), purpose="invoice",
                     reminder=None, link=LINK),
        text="Bonjour,\n\nMontant : 1 234,56 € = total. \t\n" + "é" * 120 + "\n. point\nFrom ici\n" + " " * 90,
    )
    wire = compose_message(rendered=rendered, sender="p@parcours.example", message_id="<m@x>",
                           recipient=Recipient(email="ann@contoso.example")).wire
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    for subtype, expected in (("plain", rendered.text), ("html", rendered.html)):
        part = parsed.get_body((subtype,))
        assert (part["Content-Type"], part["Content-Transfer-Encoding"]) == (
            f'text/{subtype}; charset="utf-8"', "quoted-printable")
        assert part.get_content().replace("\r\n", "\n") == "\n".join(expected.splitlines()) + "\n"
        encoded = part.get_payload(decode=False)
        assert max(len(line) for line in encoded.splitlines()) <= 76
        assert all(ord(c) < 128 for c in encoded), "7-bit: no reliance on 8BITMIME"


def test_both_email_adapters_are_registered_by_entry_point():
    adapters = load_adapters()
    assert {"email_link", "email_attachment"} <= set(adapters)
    assert all(name == adapter.name for name, adapter in adapters.items())


def test_the_dev_secrets_are_refused_in_production():
    with pytest.raises(ValidationError, match="link_secret"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="bounce_secret"):
        Settings(environment="production", link_secret="s3cr3t-from-the-vault")
    with pytest.raises(ValidationError, match="key_encryption_secret"):
        Settings(environment="production", link_secret="s3cr3t-from-the-vault", bounce_secret="an0ther-from-the-vault")
    assert Settings(environment="production", link_secret="s3cr3t-from-the-vault",
                    bounce_secret="an0ther-from-the-vault", key_encryption_secret="a-th1rd-one").is_production
    with pytest.raises(ValidationError, match="go together"):
        Settings(smtp_username="mailer")
    with pytest.raises(ValidationError, match="mail_from"):
        Settings(mail_from="Parcours")


def test_the_message_speaks_the_customer_language_carried_by_the_request():
    from parcours_channels.adapters.mail.compose import invoice_message
    from parcours_contracts import DispatchRequested

    invoice_id = uuid.uuid4()
    request = DispatchRequested(tenant_id="acme", invoice_id=invoice_id, correlation_id=str(invoice_id),
                                channel="email_link", recipients=[Recipient(email="ap@contoso.example")],
                                invoice=invoice(), language="en")
    english = invoice_message(request, request.recipients[0], message_id="<x@y>", settings=Settings())
    assert english["Subject"] == "Invoice INV-7 from Northwind Ltd"
    french = invoice_message(request.model_copy(update={"language": None}), request.recipients[0],
                             message_id="<x@y>", settings=Settings())
    assert french["Subject"] == "Facture INV-7 de Northwind Ltd"


@pytest.mark.parametrize("name", ["", "Ann", "Ann O. Smith", 'Bob "the" Builder', "Zoë Ünïcödé", "Müller, Hans",
                                  "Jean-François d'Artagnan", "a\\b", "  spaced  ", "Émilie " + "Longname " * 8])
@pytest.mark.parametrize("subject", ["Facture INV-7 de Northwind Ltd", "Facture n° 2026-0001 de Société Générale",
                                     "Invoice " + "word " * 30, "é" * 100, "=?utf-8?q?x?= looks encoded"])
def test_headers_written_for_the_wire_read_back_as_given_within_78_columns(name, subject):
    rendered = render_email(invoice=invoice(), purpose="invoice", reminder=None, link=LINK)
    rendered = dataclasses.replace(rendered, subject=subject)
    wire = compose_message(rendered=rendered, sender="p@parcours.example", message_id="<m@x>",
                           recipient=Recipient(email="ann@contoso.example", name=name)).wire
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert parsed["Subject"] == subject
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == (" ".join(name.split()), "ann@contoso.example")

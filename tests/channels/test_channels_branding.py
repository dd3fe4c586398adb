"""Tenant branding and template overrides: set through the API, validated before they are
stored, and seen in what the SMTP sink receives — invoices and reminders alike."""

from __future__ import annotations

import base64
import email
import email.policy

import httpx
import pytest

from parcours_channels.adapters.mail.overrides import override_errors
from parcours_contracts import Recipient, ReminderInfo

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
ONE_RECIPIENT = [Recipient(email="jeanne@buyer.example", name="Jeanne Martin")]


@pytest.fixture
async def tenant_api(start_channels, tenant_key):
    channels = await start_channels()
    key = await tenant_key(channels.host, "acme", "ACME SAS")
    async with httpx.AsyncClient(base_url=channels.host.url, headers={"Authorization": f"Bearer {key}"}) as client:
        yield channels, client


def html_and_text(raw: bytes) -> tuple[str, str, email.message.EmailMessage]:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    html, text = (parsed.get_body((subtype,)).get_content().replace("\r\n", "\n") for subtype in ("html", "plain"))
    return html, text, parsed


async def test_branding_shows_in_the_message_with_the_logo_inline(tenant_api, sink, make_dispatch):
    channels, client = tenant_api
    put = await client.put("/v1/branding", json={
        "name": "ACME Services", "primary_color": "#0b7285", "text_color": "#111111",
        "signature": "Service facturation\nACME Services — 01 23 45 67 89",
        "logo": {"media_type": "image/png", "data": base64.b64encode(PNG).decode()}})
    assert put.status_code == 200, put.text
    assert (await client.get("/v1/branding")).json()["logo"] == {"media_type": "image/png", "bytes": len(PNG)}

    await channels.publish(make_dispatch(tenant_id="acme", recipients=ONE_RECIPIENT))
    [message] = await sink.wait_for(1)
    html, text, parsed = html_and_text(message["raw"])
    assert 'src="cid:logo@parcours"' in html and 'alt="ACME Services"' in html
    assert "background:#0b7285" in html and "color:#111111" in html
    assert "Cordialement,<br>Service facturation<br>ACME Services — 01 23 45 67 89" in html
    assert text.rstrip().endswith("Cordialement,\nService facturation\nACME Services — 01 23 45 67 89")
    [logo] = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert logo["Content-ID"] == "<logo@parcours>" and logo.get_content() == PNG
    assert parsed.get_body(("html",)) is not None and logo.get_content_disposition() == "inline"

    # A logo by URL is linked, not attached.
    await client.put("/v1/branding", json={"logo_url": "https://cdn.acme.example/logo.png"})
    await channels.publish(make_dispatch(tenant_id="acme", recipients=ONE_RECIPIENT))
    html, _, parsed = html_and_text((await sink.wait_for(2))[-1]["raw"])
    assert 'src="https://cdn.acme.example/logo.png"' in html
    assert not [p for p in parsed.walk() if p.get_content_maintype() == "image"]

    # Without branding, the seller's name heads the message in the platform's colours.
    assert (await client.delete("/v1/branding")).status_code == 204
    assert (await client.delete("/v1/branding")).status_code == 404
    await channels.publish(make_dispatch(tenant_id="acme", recipients=ONE_RECIPIENT))
    html, _, _ = html_and_text((await sink.wait_for(3))[-1]["raw"])
    assert "Ateliers Dupont SAS</strong>" in html and "background:#1f6feb" in html and "cid:" not in html


BAD_BRANDINGS = [
    ({"primary_color": "red"}, "/primary_color"),
    ({"logo_url": "http://cdn.acme.example/logo.png"}, "/logo_url"),
    ({"logo": {"media_type": "image/png", "data": base64.b64encode(b"GIF89a....").decode()}}, "/logo/data"),
    ({"logo": {"media_type": "image/png", "data": "not base64!"}}, "/logo/data"),
    ({"logo": {"media_type": "image/svg+xml", "data": "PHN2Zz4="}}, "/logo/media_type"),
    ({"logo_url": "https://cdn.acme.example/l.png", "logo": {"media_type": "image/png", "data": "iVBORw0KGgo="}},
     "/logo"),
    ({"signature": "x" * 2001}, "/signature"),
]


async def test_bad_branding_is_refused_field_by_field_and_changes_nothing(tenant_api):
    channels, client = tenant_api
    for body, pointer in BAD_BRANDINGS:
        response = await client.put("/v1/branding", json=body)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        assert pointer in [e["pointer"] for e in response.json()["errors"]], (body, response.json())
    assert (await client.get("/v1/branding")).status_code == 404


async def test_a_template_override_is_used_for_its_language_and_for_reminders(tenant_api, sink, make_dispatch):
    channels, client = tenant_api
    default = (await client.get("/v1/templates/fr/subject")).json()
    assert default["overridden"] is False and "Facture {{ number }}" in default["source"]

    subject = "{{ brand.name }} · {% if purpose == 'reminder' %}relance {{ reminder.sequence }}{% else %}facture{% endif %} {{ number }}"
    assert (await client.put("/v1/templates/fr/subject", json={"source": subject})).status_code == 200
    body = "Madame, Monsieur,\n{{ seller }} : {{ amount }} au {{ due_date }}.\n{{ link }}\n"
    assert (await client.put("/v1/templates/fr/body_text", json={"source": body})).status_code == 200
    listed = (await client.get("/v1/templates")).json()["overrides"]
    assert [(o["language"], o["part"]) for o in listed] == [("fr", "body_text"), ("fr", "subject")]

    await channels.publish(make_dispatch(tenant_id="acme", recipients=ONE_RECIPIENT))
    await channels.publish(make_dispatch(tenant_id="acme", recipients=ONE_RECIPIENT, purpose="reminder",
                                         reminder=ReminderInfo(strategy="default", step="second", sequence=2)))
    await channels.publish(make_dispatch(tenant_id="acme", recipients=ONE_RECIPIENT, language="en"))
    received = await sink.wait_for(3)
    subjects = sorted(m["subject"] for m in received)
    assert subjects == ["Ateliers Dupont SAS · facture F-2026-0042", "Ateliers Dupont SAS · relance 2 F-2026-0042",
                        "Invoice F-2026-0042 from Ateliers Dupont SAS"], "English keeps the platform's template"
    french = next(m for m in received if m["subject"].endswith("· facture F-2026-0042"))
    _, text, _ = html_and_text(french["raw"])
    assert text.startswith("Madame, Monsieur,\nAteliers Dupont SAS : 1\u202f234,50\u00a0€ au 1 décembre 2026.\n")

    assert (await client.delete("/v1/templates/fr/subject")).status_code == 204
    assert (await client.get("/v1/templates/fr/subject")).json()["overridden"] is False
    assert (await client.delete("/v1/templates/fr/subject")).status_code == 404


async def test_a_template_that_does_not_render_is_refused_with_where_and_why(tenant_api):
    channels, client = tenant_api
    refused = await client.put("/v1/templates/en/body_html", json={"source": "<p>{% if %}</p>"})
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    [error] = refused.json()["errors"]
    assert error["pointer"] == "/source" and error["code"] == "template_syntax" and error["detail"].startswith("line 1")
    assert (await client.get("/v1/templates/en/body_html")).json()["overridden"] is False
    assert (await client.get("/v1/templates")).json()["overrides"] == []


@pytest.mark.parametrize(("part", "source", "code"), [
    ("body_text", "{{ customer_vat_number }} {{ link }}", "template_undefined"),
    ("body_text", "Pay now!", "link_missing"),
    ("body_html", "{% extends 'base.html.j2' %}{% block content %}<p>{{ amount }}</p>{% endblock %}", "link_missing"),
    ("body_text", "{{ link.__class__.__mro__ }}", "template_unsafe"),
    ("body_text", "{{ ''.__class__.__subclasses__() }} {{ link }}", "template_unsafe"),
    ("body_text", "{{ reminder.sequence + 1 }} {{ link }}", "template_undefined"),  # None on an invoice
    ("subject", "{{ '' }}", "subject_length"),
    ("body_text", "{% include 'missing.j2' %}{{ link }}", "template_error"),
    ("body_text", "{% for i in range(10**6) %}{% for j in range(10**6) %}{% endfor %}{% endfor %}{{ link }}",
     "template_error"),  # no loop that would hold the API for hours
])
def test_override_validation_renders_every_purpose_in_the_sandbox(part, source, code):
    [error] = override_errors(language="en", part=part, source=source, others=())
    assert (error["pointer"], error["code"]) == ("/source", code), error


def test_an_override_renders_against_branded_and_unbranded_samples_and_may_extend_the_base():
    html = ("{% extends 'base.html.j2' %}{% block content %}<p>{{ brand.name }}: {{ amount }}</p>"
            "<a href=\"{{ link }}\">{{ number }}</a>{% endblock %}")
    assert override_errors(language="fr", part="body_html", source=html, others=()) == []

"""DKIM per tenant sender domain: the key made through the API, sealed at rest, and messages
signed with it — verified with dkimpy on what the SMTP sink received, the public key answered
from the record the API told the tenant to publish."""

from __future__ import annotations

import email
import email.policy

import dkim
import httpx
import pytest

from parcours_channels.adapters.mail.profile import load_tenant_mail
from parcours_channels.domain.sealing import SealBroken, unseal
from parcours_channels.store.tenant_mail import SenderDomain

KEY_SECRET = "test-key-encryption-secret"


@pytest.fixture
async def tenant_channels(start_channels, tenant_key):
    """Channels with tenant `acme` able to call its API: (channels, client with acme's key)."""
    channels = await start_channels(key_encryption_secret=KEY_SECRET)
    key = await tenant_key(channels.host, "acme", "ACME SAS")
    async with httpx.AsyncClient(base_url=channels.host.url, headers={"Authorization": f"Bearer {key}"}) as client:
        yield channels, client


def resolver_of(records: dict[str, str]):
    """dkimpy's injectable DNS function answering from the records the API gave."""
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        value = records.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None
    return dnsfunc


def published(sender_domain: dict) -> dict[str, str]:
    return {r["name"]: r["value"] for r in sender_domain["dns_records"]}


async def test_the_api_makes_a_key_per_domain_and_gives_the_records_to_publish(tenant_channels, tenant_key):
    channels, client = tenant_channels
    assert (await client.get("/v1/sender-domain")).status_code == 404

    created = await client.put("/v1/sender-domain", json={"domain": "acme.example",
                                                           "from_address": "factures@acme.example"})
    assert created.status_code == 201, created.text
    body = created.json()
    selector = body["dkim"]["selector"]
    records = published(body)
    dkim_value = records[f"{selector}._domainkey.acme.example"]
    assert dkim_value.startswith("v=DKIM1; k=rsa; p=MII")
    assert records["acme.example"] == "v=spf1 include:spf.parcours.localhost ~all"
    assert records["_dmarc.acme.example"].startswith("v=DMARC1; p=quarantine")
    dkim_record = next(r for r in body["dns_records"] if r["name"].endswith("._domainkey.acme.example"))
    assert "".join(dkim_record["strings"]) == dkim_value and all(len(s) <= 255 for s in dkim_record["strings"])

    # Same domain again: the key stays (it may already be published); a rotation makes a new one.
    again = await client.put("/v1/sender-domain", json={"domain": "acme.example", "from_name": "ACME Factures",
                                                         "from_address": "factures@billing.acme.example"})
    assert again.status_code == 200 and again.json()["dkim"]["selector"] == selector
    assert published(again.json())[f"{selector}._domainkey.acme.example"] == dkim_value
    rotated = (await client.post("/v1/sender-domain/dkim-key")).json()
    assert rotated["dkim"]["selector"] != selector
    assert published(rotated)[f"{rotated['dkim']['selector']}._domainkey.acme.example"] != dkim_value
    assert (await client.get("/v1/sender-domain")).json() == rotated

    # Another tenant sees none of it; no key, no access.
    other_key = await tenant_key(channels.host, "globex", "Globex")
    other = await client.get("/v1/sender-domain", headers={"Authorization": f"Bearer {other_key}"})
    assert other.status_code == 404
    assert (await client.get("/v1/sender-domain", headers={"Authorization": ""})).status_code == 401


async def test_a_from_address_off_the_domain_or_a_bad_domain_is_refused_and_changes_nothing(tenant_channels):
    channels, client = tenant_channels
    refused = await client.put("/v1/sender-domain", json={"domain": "acme.example",
                                                          "from_address": "factures@evil.example"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["pointer"] == "/from_address"
    bad = await client.put("/v1/sender-domain", json={"domain": "Not A Domain", "from_address": "a@acme.example"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/domain"
    assert (await client.get("/v1/sender-domain")).status_code == 404


async def test_the_private_key_is_sealed_at_rest(tenant_channels):
    channels, client = tenant_channels
    await client.put("/v1/sender-domain", json={"domain": "acme.example", "from_address": "factures@acme.example"})
    async with channels.host.ctx.sessions() as session:
        row = await session.get(SenderDomain, "acme")
    assert "PRIVATE KEY" not in row.sealed_private_key
    assert unseal(row.sealed_private_key, [KEY_SECRET]).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    with pytest.raises(SealBroken):
        unseal(row.sealed_private_key, ["another-secret"])
    # A lost secret degrades to the platform's address (logged), rather than to undeliverable mail.
    async with channels.host.ctx.sessions() as session:
        assert (await load_tenant_mail(session, tenant_id="acme", secrets=[KEY_SECRET])).sender is not None
        assert (await load_tenant_mail(session, tenant_id="acme", secrets=["another-secret"])).sender is None


async def test_messages_from_the_tenant_domain_are_signed_and_verify_with_the_published_key(
        tenant_channels, sink, make_dispatch):
    channels, client = tenant_channels
    sender = (await client.put("/v1/sender-domain", json={
        "domain": "acme.example", "from_address": "factures@acme.example", "from_name": "ACME Facturation"})).json()
    request = make_dispatch(tenant_id="acme")
    await channels.publish(request)
    received = await sink.wait_for(2)
    assert len(received) == 2
    dnsfunc = resolver_of(published(sender))
    for message in received:
        raw = message["raw"]
        assert message["from"] == "ACME Facturation <factures@acme.example>"
        assert message["message_id"].endswith("@acme.example>"), "Message-ID on the tenant's domain"
        assert dkim.verify(raw, dnsfunc=dnsfunc), "the signature verifies with the published record"
        signature = email.message_from_bytes(raw, policy=email.policy.compat32)["DKIM-Signature"]
        tags = {k.strip(): v.strip() for k, _, v in (t.partition("=") for t in signature.split(";"))}
        assert tags["d"] == "acme.example" and tags["s"] == sender["dkim"]["selector"]
        assert {h.strip() for h in tags["h"].replace("\r\n", "").split(":")} >= {
            "from", "to", "subject", "date", "message-id", "mime-version", "content-type"}
        # What the signature protects: a changed subject or body no longer verifies.
        assert not dkim.verify(raw.replace(b"Subject: Facture", b"Subject: Avoir", 1), dnsfunc=dnsfunc)
        assert not dkim.verify(raw.replace(b"Bonjour", b"Bonjoor", 1), dnsfunc=dnsfunc)

    # A key that is not the published one does not verify: rotate without publishing.
    await client.post("/v1/sender-domain/dkim-key")
    await channels.publish(make_dispatch(tenant_id="acme"))
    newest = (await sink.wait_for(4))[-1]["raw"]
    assert not dkim.verify(newest, dnsfunc=dnsfunc)


async def test_a_tenant_without_a_sender_domain_sends_from_the_platform_unsigned(tenant_channels, sink, make_dispatch):
    channels, client = tenant_channels
    await client.put("/v1/sender-domain", json={"domain": "acme.example", "from_address": "factures@acme.example"})
    assert (await client.delete("/v1/sender-domain")).status_code == 204
    assert (await client.delete("/v1/sender-domain")).status_code == 404
    await channels.publish(make_dispatch(tenant_id="acme", recipients=[{"email": "jeanne@buyer.example"}]))
    [message] = await sink.wait_for(1)
    assert message["from"] == "Parcours <invoices@parcours.localhost>"
    assert b"DKIM-Signature" not in message["raw"]


def test_a_signed_message_verifies_whatever_its_structure_and_headers():
    """Long non-ASCII subjects (encoded words, folded), a logo related to the HTML, a PDF attached."""
    from parcours_channels.adapters.mail.compose import Attachment, compose_message, sign_message
    from parcours_channels.adapters.mail.profile import InlineImage
    from parcours_channels.adapters.mail.render import RenderedEmail
    from parcours_channels.domain.dkim import generate_key
    from parcours_contracts import Recipient

    key = generate_key("acme.example", "s2026")
    rendered = RenderedEmail(subject="Facture n° F-2026-0042 de Société Générale d'Équipements — échéance " * 3,
                             text="Bonjour,\n\nVoici la facture.   \n\n\n", html="<p>Bonjour</p><img src=\"cid:logo@parcours\">",
                             language="fr")
    message = compose_message(rendered=rendered, sender="ACME <factures@acme.example>",
                              recipient=Recipient(email="jeanne@buyer.example", name="Jeanne Ébène"),
                              message_id="<d1.abc@acme.example>", logo=InlineImage("image/png", b"\x89PNG\r\n\x1a\n0"),
                              attachment=Attachment(filename="F-2026-0042.pdf", content=b"%PDF-1.7\n" + bytes(range(256))))
    wire = sign_message(message, key).wire
    assert wire.startswith(b"DKIM-Signature: v=1;") and wire.endswith(b"\r\n" + message.wire), "on top, nothing else changed"
    assert dkim.verify(wire, dnsfunc=resolver_of({key.record_name: key.record_value}))
    assert not dkim.verify(wire.replace(b"F-2026-0042.pdf", b"F-2026-0043.pdf"),
                           dnsfunc=resolver_of({key.record_name: key.record_value}))


def test_mail_from_the_platform_is_signed_with_the_platform_key_when_one_is_configured(make_dispatch):
    from pydantic import ValidationError

    from parcours_channels.adapters.mail.compose import invoice_message
    from parcours_channels.config import Settings
    from parcours_channels.domain.dkim import generate_key

    key = generate_key("parcours.localhost", "platform")
    settings = Settings(dkim_selector="platform", dkim_private_key=key.private_pem.decode())
    request = make_dispatch()
    wire = invoice_message(request, request.recipients[0], message_id="<m@parcours.localhost>",
                           settings=settings).wire
    assert dkim.verify(wire, dnsfunc=resolver_of({key.record_name: key.record_value}))
    assert b"DKIM-Signature" not in invoice_message(request, request.recipients[0], settings=Settings(),
                                                    message_id="<m@parcours.localhost>").wire
    with pytest.raises(ValidationError, match="go together"):
        Settings(dkim_selector="platform")

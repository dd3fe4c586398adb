"""`make run`'s partner simulators: the settings they give channels load, and the generated demo
identities fit together (an AS2 message built from them is processed by the AS2 peer, a Peppol
document reaches the access point)."""

from __future__ import annotations

import base64
import json
from datetime import date

import httpx
import pytest

from parcours_channels.adapters.edi import compat  # noqa: F401  (before pyas2lib loads oscrypto)
from parcours_channels.adapters.edi.as2 import build_message, send
from parcours_channels.config import Settings
from parcours_devstack.partners.dev import DevPartners


@pytest.fixture
async def partners():
    running = DevPartners()
    env = await running.start(tracker_url="http://127.0.0.1:9", document_token="reader-token",
                              channels_url="http://127.0.0.1:9")
    yield running, env
    await running.stop()


async def test_channels_settings_from_the_dev_partners_reach_them(partners, monkeypatch):
    running, env = partners
    for name, value in env["channels"].items():
        monkeypatch.setenv(f"PARCOURS_CHANNELS_{name}", value)
    settings = Settings()
    assert settings.edi.configured and settings.peppol.configured
    assert running.peppol.webhook_url == "http://127.0.0.1:9/v1/peppol/events"

    _, partner = settings.edi.partner_for("ANY-CUSTOMER")
    built = build_message(settings.edi, partner, b"UNA:+.? 'UNB+UNOC:3+X+Y'", dispatch_id="d-1", filename="d-1.edi")
    async with httpx.AsyncClient() as client:
        verdict = await send(client, settings.edi, partner, built)
        state = (await client.get(running.urls()["as2_peer"])).json()
        refused = await client.post(f"{settings.peppol.ap_url}/v1/documents", json={
            "sender": "iso6523-actorid-upis::0009:73282932000074", "receiver": "iso6523-actorid-upis::0002:552100554",
            "document": base64.b64encode(b"<Invoice/>").decode()},
            headers={"Authorization": f"Bearer {settings.peppol.api_key.get_secret_value()}"})
    assert verdict is not None and verdict.verified  # signed with our demo key, verified with the peer's certificate
    assert state["posts"] == 1 and state["rejected"] == [built.message_id]  # not an INVOIC: an error MDN, trusted
    assert refused.status_code == 422 and {e["rule"] for e in refused.json()["errors"]} >= {"PEPPOL-EN16931-R001"}


async def test_the_demo_customers_on_partner_channels_are_routable_there(partners, monkeypatch):
    """What `make run`'s demo puts in the router is accepted with the channels the dev router offers,
    the AP customer's contact is served by the demo platform, and the Chorus Pro customer's SIRET is
    a structure of the simulator (else the deposit would be refused before it is made)."""
    from parcours_channels.domain.ap_platform import choose_partner
    from parcours_devstack.demo import CUSTOMERS, invoice_body
    from parcours_router.config import Settings as RouterSettings
    from parcours_router.domain.customers import check_customer
    from parcours_router.store.customers import CustomerWrite

    running, env = partners
    for name, value in env["router"].items():
        monkeypatch.setenv(f"PARCOURS_ROUTER_{name}", value)
    offered = RouterSettings().channels
    by_channel = {}
    for customer in CUSTOMERS:
        entry = CustomerWrite.model_validate({"channels": ["email_link"]} | {
            k: v for k, v in customer.items() if k not in ("ref", "siret")})
        assert check_customer(contact_emails=[c.email for c in entry.contacts], channels=entry.channels, offered=offered,
                              tags=entry.tags, timezone=entry.timezone) == []
        by_channel[entry.channels[0]] = (customer, entry)
    public, _ = by_channel["chorus_pro"]
    body = invoice_body("DEMO-1", public, issued=date(2026, 11, 2), due_in_days=30, lines=[("x", "1", "10.00", "20")])
    assert body["buyer"]["siret"] in running.chorus.structures
    _, ap_customer = by_channel["ap_platform"]
    partners_setting = json.loads(env["channels"]["AP_PLATFORM_PARTNERS"])
    assert choose_partner({n: p["recipient_domains"] for n, p in partners_setting.items()},
                          [c.email.rsplit("@", 1)[-1] for c in ap_customer.contacts]) == "demo-ap"

"""`make run`'s partner simulators: the settings they give channels load, and the generated demo
identities fit together (an AS2 message built from them is processed by the AS2 peer, a Peppol
document reaches the access point)."""

from __future__ import annotations

import base64

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

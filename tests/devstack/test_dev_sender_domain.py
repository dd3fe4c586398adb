"""`make run`'s demo tenant sends from a sender domain whose records live in the stack's loopback
DNS: set up through channels' API, its check passes, and a restart keeps the same key."""

from __future__ import annotations

import httpx

from parcours_devstack import demo
from parcours_devstack.dns_server import TxtZoneServer


async def test_the_demo_sender_domain_is_published_and_passes_its_check(run_service, tenant_key):
    async with TxtZoneServer() as zone:
        channels = await run_service("channels", dns_nameservers=[zone.host], dns_port=zone.port, dns_timeout=2,
                                     bounce_smtp_port=0)
        key = await tenant_key(channels, demo.DEMO_TENANT, "Parcours Démo SARL")

        first = await demo.ensure_sender_domain(channels.url, key, zone)
        assert first == {"domain": demo.DEMO_SENDER_DOMAIN, "ok": True,
                         "checks": {"spf": "pass", "dkim": "pass", "dmarc": "pass"}}
        async with httpx.AsyncClient(base_url=channels.url, headers={"Authorization": f"Bearer {key}"}) as client:
            sender = (await client.get("/v1/sender-domain")).json()
            for record in sender["dns_records"]:
                zone.set(record["name"])  # a restarted stack: its zone starts empty, the key stays in channels' DB
            again = await demo.ensure_sender_domain(channels.url, key, zone)
            assert again["ok"] is True
            assert (await client.get("/v1/sender-domain")).json()["dkim"] == sender["dkim"], "the same key"

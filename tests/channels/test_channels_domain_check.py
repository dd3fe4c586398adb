"""The sender-domain setup check against a real DNS server on loopback (dnspython's resolver
pointed at it through the settings): what is published decides each verdict."""

from __future__ import annotations

import httpx
import pytest

from parcours_channels.adapters.dns_lookup import txt_lookup
from parcours_channels.config import Settings
from parcours_channels.domain.sender_check import SenderSetup, check_sender_domain
from parcours_devstack.dns_server import TxtZoneServer
from parcours_devstack.ports import free_port

SPF_OK = "v=spf1 include:spf.parcours.localhost ~all"


@pytest.fixture
async def zone():
    async with TxtZoneServer() as server:
        yield server


@pytest.fixture
async def checked(start_channels, tenant_key, zone):
    """(client with acme's key, the sender domain as the API returned it) with channels resolving via `zone`."""
    channels = await start_channels(dns_nameservers=["127.0.0.1"], dns_port=zone.port, dns_timeout=2)
    key = await tenant_key(channels.host, "acme", "ACME SAS")
    async with httpx.AsyncClient(base_url=channels.host.url, headers={"Authorization": f"Bearer {key}"}) as client:
        sender = (await client.put("/v1/sender-domain", json={"domain": "acme.example",
                                                               "from_address": "factures@acme.example"})).json()
        yield client, sender


def publish_as_told(zone: TxtZoneServer, sender: dict) -> None:
    for record in sender["dns_records"]:
        zone.set(record["name"], record["value"])


async def report(client) -> dict:
    response = await client.get("/v1/sender-domain/check")
    assert response.status_code == 200, response.text
    body = response.json()
    return {**body, "by_name": {c["name"]: c for c in body["checks"]}}


async def test_nothing_published_fails_every_check_and_publishing_what_the_api_said_passes(checked, zone):
    client, sender = checked
    result = await report(client)
    assert result["ok"] is False and result["domain"] == "acme.example"
    assert [c["name"] for c in result["checks"]] == ["spf", "dkim", "dmarc"]
    assert {c["status"] for c in result["checks"]} == {"fail"}
    dkim = result["by_name"]["dkim"]
    assert dkim["record_name"] == f"{sender['dkim']['selector']}._domainkey.acme.example"
    assert dkim["expected"] in {r["value"] for r in sender["dns_records"]}
    assert "include:spf.parcours.localhost" in result["by_name"]["spf"]["detail"]

    publish_as_told(zone, sender)
    zone.set("_dmarc.acme.example", "v=DMARC1; p=reject; adkim=s; rua=mailto:dmarc@acme.example")
    result = await report(client)
    assert result["ok"] is True
    assert {c["status"] for c in result["checks"]} == {"pass"}, result["checks"]
    assert ("acme.example", "TXT") in zone.queries, "the records were really looked up over DNS"


async def test_spf_reached_through_includes_passes_and_wrong_spf_records_fail(checked, zone):
    client, sender = checked
    publish_as_told(zone, sender)
    zone.set("acme.example", "v=spf1 mx include:_spf.mailhost.example -all")
    zone.set("_spf.mailhost.example", "v=spf1 ip4:192.0.2.0/24 include:spf.parcours.localhost ~all")
    spf = (await report(client))["by_name"]["spf"]
    assert spf["status"] == "pass" and "_spf.mailhost.example" in spf["detail"]

    zone.set("acme.example", "v=spf1 include:_spf.google.com ~all")
    spf = (await report(client))["by_name"]["spf"]
    assert spf["status"] == "fail" and spf["found"] == ["v=spf1 include:_spf.google.com ~all"]

    zone.set("acme.example", SPF_OK, "v=spf1 a -all")
    assert "Several SPF records" in (await report(client))["by_name"]["spf"]["detail"]

    zone.set("acme.example", "v=spf1 include:spf.parcours.localhost +all")
    assert "+all" in (await report(client))["by_name"]["spf"]["detail"]

    # A record loop and more than ten lookups are permanent errors for receivers.
    zone.set("acme.example", "v=spf1 " + " ".join(f"include:n{i}.example" for i in range(11)) + " -all")
    for i in range(11):
        zone.set(f"n{i}.example", "v=spf1 -all")
    spf = (await report(client))["by_name"]["spf"]
    assert spf["status"] == "fail" and "lookups" in spf["detail"]


async def test_a_dkim_record_that_is_not_our_key_fails(checked, zone):
    client, sender = checked
    publish_as_told(zone, sender)
    name = f"{sender['dkim']['selector']}._domainkey.acme.example"
    zone.set(name, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAother")
    dkim = (await report(client))["by_name"]["dkim"]
    assert dkim["status"] == "fail" and "not the one we sign with" in dkim["detail"]
    zone.set(name, "v=DKIM1; k=rsa; p=")
    assert "revoked" in (await report(client))["by_name"]["dkim"]["detail"]
    good = next(r["value"] for r in sender["dns_records"] if r["name"] == name)
    zone.set(name, good.replace("v=DKIM1;", "v=DKIM1; t=y;"))
    assert (await report(client))["by_name"]["dkim"]["status"] == "warn"

    # After a rotation, the old record no longer matches until the new one is published.
    rotated = (await client.post("/v1/sender-domain/dkim-key")).json()
    assert (await report(client))["by_name"]["dkim"]["status"] == "fail"
    publish_as_told(zone, rotated)
    assert (await report(client))["by_name"]["dkim"]["status"] == "pass"


async def test_dmarc_policy_and_alignment(checked, zone):
    client, sender = checked
    publish_as_told(zone, sender)
    zone.set("_dmarc.acme.example", "v=DMARC1; p=none")
    result = await report(client)
    assert result["by_name"]["dmarc"]["status"] == "warn" and result["ok"] is True, "p=none only warns"

    # From on a subdomain: relaxed alignment passes; strict alignment fails. The subdomain has no
    # record of its own: the organisational domain's policy applies.
    await client.put("/v1/sender-domain", json={"domain": "acme.example", "from_address": "f@billing.acme.example"})
    zone.set("_dmarc.acme.example", "v=DMARC1; p=quarantine")
    dmarc = (await report(client))["by_name"]["dmarc"]
    assert dmarc["status"] == "pass" and dmarc["record_name"] == "_dmarc.acme.example"
    zone.set("_dmarc.acme.example", "v=DMARC1; p=reject; adkim=s")
    dmarc = (await report(client))["by_name"]["dmarc"]
    assert dmarc["status"] == "fail" and "not aligned (strict)" in dmarc["detail"]


async def test_an_unreachable_resolver_is_reported_not_mistaken_for_a_missing_record():
    setup = SenderSetup(domain="acme.example", from_domain="acme.example", selector="s1", public_key="MII",
                        spf_expected=["include:spf.parcours.localhost"])
    silent = Settings(dns_nameservers=["127.0.0.1"], dns_port=free_port(), dns_timeout=0.3)
    checks = await check_sender_domain(setup, txt_lookup(silent))
    assert [c.status for c in checks] == ["fail"] * 3
    assert all(c.detail.startswith("DNS lookup failed") for c in checks), checks

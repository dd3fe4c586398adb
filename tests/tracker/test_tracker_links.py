"""Tracked links: a GET is a click (recorded, published, journaled at once), a HEAD is not,
forged or expired tokens change nothing; the invoice page they lead to."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select

from parcours_contracts import LinkClicked, topics
from parcours_runtime.links import issue_link_token
from parcours_tracker.store.models import Click, Invoice, JournalEntry


def token_for(f, secret: str = "dev-link-secret", **overrides) -> str:
    claims = dict(tenant_id=f.tenant_id, invoice_id=f.invoice_id, dispatch_id=f.dispatch_id,
                  recipient="ap@globex.example")
    return issue_link_token(secret, **{**claims, **overrides})


async def clicks_of(host, invoice_id) -> list[Click]:
    async with host.ctx.sessions() as session:
        return list((await session.execute(select(Click).where(Click.invoice_id == invoice_id))).scalars())


async def journal_kinds(host, invoice_id) -> list[str]:
    async with host.ctx.sessions() as session:
        return list((await session.execute(
            select(JournalEntry.kind).where(JournalEntry.invoice_id == invoice_id).order_by(JournalEntry.occurred_at)
        )).scalars())


async def test_a_click_is_recorded_published_and_redirects_to_the_invoice_page(
        tracker, client, tenant_key, publish, flow, read_topic, eventually, consumed):
    key = await tenant_key(tracker, tenant_id="acme")
    f = flow(number="F-2026-777", seller_name="Dupont & <Fils>")
    await publish(f.received(0), f.dispatched(2))
    await eventually(lambda: _eq(journal_kinds(tracker, f.invoice_id), ["received", "dispatched"]))
    token = token_for(f)

    response = await client.get(f"/l/{token}", headers={"User-Agent": "Thunderbird/128"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/v/{token}"
    assert response.headers["cache-control"] == "no-store"

    [click] = await clicks_of(tracker, f.invoice_id)
    assert (click.ip, click.user_agent, click.recipient) == ("127.0.0.1", "Thunderbird/128", "ap@globex.example")
    assert click.dispatch_id == f.dispatch_id
    journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey",
                                headers={"Authorization": f"Bearer {key}"})).json()
    assert journey["status"] == "viewed", "the journey shows the click at once, not after the broker round trip"
    assert journey["events"][-1]["kind"] == "clicked"

    published = await read_topic(topics.LINK_CLICKED, until=lambda events: len(events) >= 1)
    [event] = published
    assert isinstance(event, LinkClicked)
    assert (event.tenant_id, event.invoice_id, event.dispatch_id) == ("acme", f.invoice_id, f.dispatch_id)
    assert (event.ip, event.user_agent, event.recipient) == ("127.0.0.1", "Thunderbird/128", "ap@globex.example")
    assert event.correlation_id == f.correlation_id
    assert event.event_id == click.event_id

    # The event comes back from the broker to our own consumer: the journal already has it.
    await eventually(lambda: consumed(event.event_id), what="the tracker consumed its own LinkClicked")
    assert await journal_kinds(tracker, f.invoice_id) == ["received", "dispatched", "clicked"]

    page = await client.get(response.headers["location"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "F-2026-777" in page.text and "1200.00 EUR" in page.text and "2026-12-02" in page.text
    assert "Dupont &amp; &lt;Fils&gt;" in page.text, "seller name is escaped"
    assert "<Fils>" not in page.text
    assert "http" not in page.text.split("<main>")[1], "no external assets or links"
    assert len(await clicks_of(tracker, f.invoice_id)) == 1, "viewing the page is not another click"


async def test_head_is_not_a_click(tracker, client, flow):
    f = flow()
    token = token_for(f)
    for path in (f"/l/{token}", f"/v/{token}"):
        response = await client.head(path)
        assert response.status_code in (200, 303), path
    assert (await client.head(f"/l/{token}")).headers["location"] == f"/v/{token}"
    assert await clicks_of(tracker, f.invoice_id) == []
    assert await journal_kinds(tracker, f.invoice_id) == []


async def test_a_click_before_the_invoice_is_known(tracker, client, flow, read_topic, publish, eventually):
    f = flow(number="F-LATE")
    token = token_for(f)
    response = await client.get(f"/l/{token}", follow_redirects=True)
    assert response.status_code == 200
    assert "being prepared" in response.text
    [event] = await read_topic(topics.LINK_CLICKED, until=lambda events: len(events) >= 1)
    assert event.correlation_id == str(f.invoice_id), "without the invoice's correlation, the invoice id"
    assert await journal_kinds(tracker, f.invoice_id) == ["clicked"]

    await publish(f.received(0))
    await eventually(lambda: _eq(journal_kinds(tracker, f.invoice_id), ["received", "clicked"]))
    async with tracker.ctx.sessions() as session:
        invoice = await session.get(Invoice, ("acme", f.invoice_id))
    assert (invoice.correlation_id, invoice.number, invoice.status) == (f.correlation_id, "F-LATE", "viewed")
    assert "F-LATE" in (await client.get(f"/v/{token}")).text


@pytest.fixture
async def rotating_tracker(run_service):
    """A tracker in the middle of a link secret rotation."""
    return await run_service("tracker", link_secrets=["new-link-secret", "old-link-secret"])


async def test_forged_or_expired_links_change_nothing(rotating_tracker, flow, read_topic):
    f = flow()
    forged = token_for(f, secret="guessed-secret")
    tampered = token_for(f, secret="new-link-secret")[:-2] + "AA"
    expired = token_for(f, secret="new-link-secret", ttl_seconds=60, now=time.time() - 3600)
    async with httpx.AsyncClient(base_url=rotating_tracker.url) as client:
        for token, status in ((forged, 404), (tampered, 404), ("garbage", 404), (expired, 410)):
            response = await client.get(f"/l/{token}")
            assert response.status_code == status, token
            assert response.headers["content-type"] == "application/problem+json"
            assert (await client.get(f"/v/{token}")).status_code == status
        browser = await client.get(f"/l/{expired}", headers={"Accept": "text/html,application/xhtml+xml"})
        assert browser.status_code == 410 and "expired" in browser.text
        assert browser.headers["content-type"].startswith("text/html")
        assert (await client.head(f"/l/{forged}")).status_code == 404

        assert await clicks_of(rotating_tracker, f.invoice_id) == []
        # Both secrets of the rotation verify; this click is the only event ever published.
        for secret in ("old-link-secret", "new-link-secret"):
            assert (await client.get(f"/l/{token_for(f, secret=secret)}")).status_code == 303
    published = await read_topic(topics.LINK_CLICKED, until=lambda events: len(events) >= 2)
    assert len(published) == 2
    assert len(await clicks_of(rotating_tracker, f.invoice_id)) == 2
    assert await journal_kinds(rotating_tracker, f.invoice_id) == ["clicked", "clicked"]


async def _eq(awaitable, expected):
    return (await awaitable) == expected

"""Tracked links: a GET is an open (a machine's when it looks like one), the interstitial's button is
the human view (recorded, published, journaled at once); HEAD records nothing; forged or expired
tokens and nonces change nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import select

from parcours_contracts import LinkClicked, topics
from parcours_runtime.links import issue_link_token
from parcours_tracker.store.models import Click, Invoice, JournalEntry


def token_for(f, secret: str = "dev-link-secret", **overrides) -> str:
    """The link channels would have sent with `f.dispatched()` (issued as it sent the message, minute 2)."""
    claims = dict(tenant_id=f.tenant_id, invoice_id=f.invoice_id, dispatch_id=f.dispatch_id,
                  recipient="ap@globex.example", now=(f.start + timedelta(minutes=2)).timestamp())
    return issue_link_token(secret, **{**claims, **overrides})


def undated_token_for(f, secret: str = "dev-link-secret") -> str:
    """A link issued before tokens carried their issue time (they live 180 days)."""
    claims = {"t": f.tenant_id, "i": str(f.invoice_id), "d": str(f.dispatch_id), "r": "ap@globex.example",
              "x": int(time.time()) + 86400, "n": "older-token"}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    signature = base64.urlsafe_b64encode(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature.rstrip(b'=').decode()}"


async def clicks_of(host, invoice_id) -> list[Click]:
    async with host.ctx.sessions() as session:
        return list((await session.execute(select(Click).where(Click.invoice_id == invoice_id))).scalars())


async def journal_kinds(host, invoice_id) -> list[str]:
    async with host.ctx.sessions() as session:
        return list((await session.execute(
            select(JournalEntry.kind).where(JournalEntry.invoice_id == invoice_id).order_by(JournalEntry.occurred_at)
        )).scalars())


async def press_button(client, token: str, **headers) -> httpx.Response:
    """What a person does on the invoice page: press the button (a form POST with the page's nonce)."""
    page = await client.get(f"/v/{token}", headers=headers)
    assert page.status_code == 200
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    assert action == f"/v/{token}/open"
    return await client.post(action, data={"nonce": nonce}, headers=headers)


async def test_a_view_is_the_button_press_recorded_published_and_shown(
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
    assert (response.headers["referrer-policy"], response.headers["x-robots-tag"]) == ("no-referrer", "noindex, nofollow")
    assert await clicks_of(tracker, f.invoice_id) == [], "opening the link is not yet a view"
    assert await journal_kinds(tracker, f.invoice_id) == ["received", "dispatched", "opened"], \
        "the open is journaled before the answer"

    page = await client.get(f"/v/{token}")
    assert "F-2026-777" in page.text and "View the invoice" in page.text
    assert "Dupont &amp; &lt;Fils&gt;" in page.text and "<Fils>" not in page.text, "seller name is escaped"
    assert "form-action 'self'" in page.headers["content-security-policy"]

    viewed = await press_button(client, token, **{"User-Agent": "Thunderbird/128"})
    assert viewed.status_code == 200 and viewed.headers["content-type"].startswith("text/html")
    assert "F-2026-777" in viewed.text and "1200.00 EUR" in viewed.text and "2026-12-02" in viewed.text
    assert "http" not in viewed.text.split("<main>")[1], "no external assets or links"

    [click] = await clicks_of(tracker, f.invoice_id)
    assert (click.ip, click.user_agent, click.recipient) == ("127.0.0.1", "Thunderbird/128", "ap@globex.example")
    assert click.dispatch_id == f.dispatch_id
    journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey",
                                headers={"Authorization": f"Bearer {key}"})).json()
    assert (journey["status"], journey["code"]) == ("viewed", 203), "the journey shows the view at once"
    assert journey["events"][-1]["kind"] == "clicked"

    published = await read_topic(topics.LINK_CLICKED, until=lambda events: len(events) >= 1)
    [event] = published
    assert isinstance(event, LinkClicked)
    assert (event.tenant_id, event.invoice_id, event.dispatch_id) == ("acme", f.invoice_id, f.dispatch_id)
    assert (event.ip, event.user_agent, event.recipient) == ("127.0.0.1", "Thunderbird/128", "ap@globex.example")
    assert event.correlation_id == f.correlation_id
    assert event.event_id == click.event_id

    # The event comes back from the broker to our own consumer: the journal already has it.
    await eventually(lambda: consumed(event), what="the tracker consumed its own LinkClicked")
    assert await journal_kinds(tracker, f.invoice_id) == ["received", "dispatched", "opened", "clicked"]

    # The same page submitted again (a refresh) is not another view; a forged nonce changes nothing.
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    await client.post(f"/v/{token}/open", data={"nonce": nonce})
    again = await client.post(f"/v/{token}/open", data={"nonce": nonce})
    assert again.status_code == 200
    forged = nonce.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAAAA"
    for bad in ({"nonce": forged}, {}, {"nonce": "1.2"}):
        refused = await client.post(f"/v/{token}/open", data=bad)
        assert refused.status_code == 400 and refused.headers["content-type"] == "application/problem+json"
    other_token = token_for(f)  # another link's page nonce does not open this one
    assert (await client.post(f"/v/{other_token}/open", data={"nonce": nonce})).status_code == 400
    assert len(await clicks_of(tracker, f.invoice_id)) == 2, "one view per page nonce: the first press and one more"


async def test_scanners_and_prefetches_are_machine_opens_and_never_views(tracker, client, tenant_key, publish, flow,
                                                                          eventually):
    key = await tenant_key(tracker, tenant_id="acme")
    f = flow()
    just_now = f.dispatched(2)
    just_now = just_now.model_copy(update={"occurred_at": datetime.now(timezone.utc)})
    await publish(f.received(0), just_now)
    await eventually(lambda: _eq(journal_kinds(tracker, f.invoice_id), ["received", "dispatched"]))
    token = token_for(f, now=time.time())  # sent just now

    browser = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/128"}
    prefetch = await client.get(f"/l/{token}", headers=browser)
    scanner = await client.get(f"/l/{token}", headers={"User-Agent": "Mozilla/5.0 (compatible; Proofpoint URL Defense)"})
    no_agent = await client.get(f"/l/{token}", headers={"User-Agent": ""})
    # an older token without its issue time: judged against the dispatch in the journal
    undated = await client.get(f"/l/{undated_token_for(f)}", headers=browser)
    assert prefetch.status_code == scanner.status_code == no_agent.status_code == undated.status_code == 303

    async def four_opens():
        journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey",
                                    headers={"Authorization": f"Bearer {key}"})).json()
        return journey if len([e for e in journey["events"] if e["kind"].startswith("opened")]) == 4 else None
    journey = await eventually(four_opens, what="the four opens journaled")
    opens = [e for e in journey["events"] if e["kind"].startswith("opened")]
    assert [e["kind"] for e in opens] == ["opened_by_machine"] * 4
    evidence = [" ".join(e["detail"]["machine_evidence"]) for e in opens]
    assert "prefetch" in evidence[0] and "proofpoint" in evidence[1].lower() and "no user agent" in evidence[2]
    assert "prefetch" in evidence[3]
    assert journey["status"] == "sent", "no open by a machine counts as a view"
    assert await clicks_of(tracker, f.invoice_id) == []


async def test_head_is_not_a_click(tracker, client, flow):
    f = flow()
    token = token_for(f)
    for path in (f"/l/{token}", f"/v/{token}"):
        response = await client.head(path)
        assert response.status_code in (200, 303), path
    assert (await client.head(f"/l/{token}")).headers["location"] == f"/v/{token}"
    assert await clicks_of(tracker, f.invoice_id) == []
    assert await journal_kinds(tracker, f.invoice_id) == []


async def test_a_view_before_the_invoice_is_known(tracker, client, flow, read_topic, publish, eventually):
    f = flow(number="F-LATE")
    token = token_for(f)
    response = await client.get(f"/l/{token}", follow_redirects=True)
    assert response.status_code == 200
    assert "being prepared" in response.text
    assert (await press_button(client, token)).status_code == 200
    [event] = await read_topic(topics.LINK_CLICKED, until=lambda events: len(events) >= 1)
    assert event.correlation_id == str(f.invoice_id), "without the invoice's correlation, the invoice id"
    await eventually(lambda: _eq(journal_kinds(tracker, f.invoice_id), ["opened_by_machine", "clicked"]))  # httpx

    await publish(f.received(0))
    await eventually(lambda: _eq(journal_kinds(tracker, f.invoice_id), ["received", "opened_by_machine", "clicked"]))
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
        assert (await client.post(f"/v/{forged}/open", data={"nonce": "1.a.b"})).status_code == 404

        assert await clicks_of(rotating_tracker, f.invoice_id) == []
        assert await journal_kinds(rotating_tracker, f.invoice_id) == []
        # Both secrets of the rotation verify; these views are the only events ever published.
        for secret in ("old-link-secret", "new-link-secret"):
            token = token_for(f, secret=secret)
            assert (await client.get(f"/l/{token}")).status_code == 303
            assert (await press_button(client, token)).status_code == 200
    published = await read_topic(topics.LINK_CLICKED, until=lambda events: len(events) >= 2)
    assert len(published) == 2
    assert len(await clicks_of(rotating_tracker, f.invoice_id)) == 2
    assert sorted(await journal_kinds(rotating_tracker, f.invoice_id)) == ["clicked"] * 2 + ["opened_by_machine"] * 2


async def _eq(awaitable, expected):
    return (await awaitable) == expected


async def test_an_answered_open_is_stored_even_if_the_tracker_is_killed_right_after(spawn_service, make_database,
                                                                                    publish, flow, eventually):
    """Opens are committed in groups (concurrent requests share a transaction) before their 303: a kill -9 as
    soon as the answers are in loses none of them."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    database_url = make_database("tracker")
    tracker = await asyncio.to_thread(lambda: spawn_service("tracker", database_url=database_url).wait_ready())
    flows = [flow() for _ in range(3)]
    await publish(*(event for f in flows for event in (f.received(0), f.dispatched(2))))
    engine = create_async_engine(database_url, poolclass=NullPool)

    async def kinds_of(kind: str) -> list:
        async with engine.connect() as conn:
            return (await conn.execute(select(JournalEntry.kind).where(JournalEntry.kind == kind))).all()
    try:
        await eventually(lambda: _len_is(kinds_of("dispatched"), 3), what="the three invoices dispatched")
        agents = ("Thunderbird/128", "Mozilla/5.0 (compatible; Proofpoint URL Defense)")
        async with httpx.AsyncClient(base_url=tracker.url, timeout=10) as client:
            answers = await asyncio.gather(*(client.get(f"/l/{token_for(f)}", headers={"User-Agent": agent})
                                             for f in flows for agent in agents for _ in range(10)))
        tracker.kill()
        assert {answer.status_code for answer in answers} == {303}
        assert len(await kinds_of("opened")) == len(await kinds_of("opened_by_machine")) == 30
    finally:
        await engine.dispose()


async def test_a_graceful_stop_writes_the_group_still_forming(make_database, flow):
    """The opens waiting for their group's window are written by stop(), and their requests answered."""
    import asyncio
    import uuid
    from types import SimpleNamespace

    from parcours_runtime.db import create_engine, session_factory
    from parcours_runtime.service import prepare_database
    from parcours_tracker.app import definition
    from parcours_tracker.opens import LinkOpen, OpenRecorder
    from parcours_tracker.store.journeys import Tracking

    url = make_database("tracker")
    await prepare_database(definition(), url)
    engine = create_engine(url, pool_size=2)
    ctx = SimpleNamespace(settings=SimpleNamespace(prefetch_seconds=10, durable_opens=False), sessions=session_factory(engine),
                          extras={"tracking": Tracking()}, engine=engine)
    recorder = OpenRecorder(ctx, window_seconds=3600)  # the group would wait an hour before writing
    f = flow()
    try:
        requests = [asyncio.create_task(recorder.record(LinkOpen(
            event_id=uuid.uuid4(), tenant_id=f.tenant_id, invoice_id=f.invoice_id, dispatch_id=f.dispatch_id,
            recipient="ap@globex.example", ip="203.0.113.9", user_agent=agent, at=datetime.now(timezone.utc))))
            for agent in ("Thunderbird/128", "python-requests/2.32")]
        await asyncio.sleep(0.1)
        assert not any(request.done() for request in requests), "a request waits for its group's commit"
        assert await journal_kinds(SimpleNamespace(ctx=ctx), f.invoice_id) == []
        await recorder.stop()
        await asyncio.gather(*requests)
        assert sorted(await journal_kinds(SimpleNamespace(ctx=ctx), f.invoice_id)) == ["opened", "opened_by_machine"]
        async with ctx.sessions() as session:
            invoice = await session.get(Invoice, (f.tenant_id, f.invoice_id))
        assert invoice.status == "pending", "an open of an unknown invoice creates its row, with no status"
    finally:
        await engine.dispose()


async def _len_is(awaitable, expected: int) -> bool:
    return len(await awaitable) == expected


async def test_an_open_lists_its_invoice_as_changed_since_without_touching_its_row(
        tracker, client, tenant_key, publish, flow, eventually):
    """`?since=` lists what the tracker learned about since: an open is only journaled (its invoice's row is
    not stamped, see parcours_tracker.opens), and still counts."""
    key = await tenant_key(tracker, tenant_id="acme")
    auth = {"Authorization": f"Bearer {key}"}
    opened, untouched = flow(number="F-OPEN"), flow(number="F-QUIET")
    for f in (opened, untouched):
        await publish(f.received(0), f.dispatched(2))
        await eventually(lambda: _eq(journal_kinds(tracker, f.invoice_id), ["received", "dispatched"]))

    async def row_stamp():
        async with tracker.ctx.sessions() as session:
            return (await session.get(Invoice, (opened.tenant_id, opened.invoice_id))).updated_at

    stamped_before = await row_stamp()
    mark = datetime.now(timezone.utc)
    since = {"since": mark.isoformat()}
    assert (await client.get("/v1/invoices", params=since, headers=auth)).json()["items"] == []

    assert (await client.get(f"/l/{token_for(opened)}", headers={"User-Agent": "Thunderbird/128"})).status_code == 303
    listed = (await client.get("/v1/invoices", params=since, headers=auth)).json()
    assert [item["number"] for item in listed["items"]] == ["F-OPEN"]
    assert "F-OPEN" in (await client.get("/v1/invoices.csv", params=since, headers=auth)).text
    assert await row_stamp() == stamped_before, "an open changes nothing on the invoice's row"
    later = {"since": (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()}
    assert (await client.get("/v1/invoices", params=later, headers=auth)).json()["items"] == []

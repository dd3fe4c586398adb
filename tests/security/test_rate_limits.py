"""Rate limits on the public routes (reachable without an API key): beyond a client's limit the answer is
429 problem+json with Retry-After and the route does nothing; other clients go on; the bucket refills;
sign-ins are limited per account tried, whatever the address; X-Forwarded-For counts only from a trusted
proxy. Clients are told apart by their source address (127.0.0.x: the loopback network is all ours)."""

from __future__ import annotations

import asyncio
import re
import uuid
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select

from parcours_runtime.links import issue_link_token
from parcours_runtime.rate_limit import ClientAddress, TokenBuckets
from parcours_tracker.store.models import Click, JournalEntry

ADMIN = {"Authorization": "Bearer dev-admin-token"}
PASSWORD = "correct horse battery"


def client_from(url: str, address: str, **kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=10, transport=httpx.AsyncHTTPTransport(local_address=address), **kw)


def link() -> SimpleNamespace:
    f = SimpleNamespace(tenant_id="acme", invoice_id=uuid.uuid4(), dispatch_id=uuid.uuid4())
    f.token = issue_link_token("dev-link-secret", tenant_id=f.tenant_id, invoice_id=f.invoice_id,
                               dispatch_id=f.dispatch_id, recipient="ap@globex.example")
    return f


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/rate-limited")
    assert int(response.headers["retry-after"]) >= 1


async def journal_kinds(host, invoice_id) -> list[str]:
    async with host.ctx.sessions() as session:
        return list((await session.execute(select(JournalEntry.kind).where(JournalEntry.invoice_id == invoice_id)))
                    .scalars())


async def clicks_of(host, invoice_id) -> int:
    async with host.ctx.sessions() as session:
        return len((await session.execute(select(Click).where(Click.invoice_id == invoice_id))).all())


async def nonce_of(http: httpx.AsyncClient, token: str) -> str:
    page = await http.get(f"/v/{token}")
    assert page.status_code == 200, page.text
    return re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)


async def test_a_link_client_over_its_limit_is_refused_and_nothing_is_recorded(run_service, eventually):
    tracker = await run_service("tracker", rate_limits={"link": "4/3600"})
    f = link()
    async with client_from(tracker.url, "127.0.0.2") as first, client_from(tracker.url, "127.0.0.3") as other:
        nonce = await nonce_of(first, f.token)                                                       # 1
        assert (await first.post(f"/v/{f.token}/open", data={"nonce": nonce})).status_code == 200   # 2: a view
        assert (await first.get(f"/l/{f.token}")).status_code == 303                                 # 3: an open
        nonce = await nonce_of(first, f.token)                                                       # 4
        assert_limited(await first.post(f"/v/{f.token}/open", data={"nonce": nonce}))
        assert_limited(await first.get(f"/l/{f.token}"))
        head = await first.head(f"/l/{f.token}")
        assert head.status_code == 429 and int(head.headers["retry-after"]) >= 1
        assert (await first.get(f"/l/{'x' * 40}")).status_code == 429, "bad tokens count too (no enumeration)"

        assert await clicks_of(tracker, f.invoice_id) == 1, "the refused view was not recorded"
        await eventually(lambda: _has(journal_kinds(tracker, f.invoice_id), "opened_by_machine"))
        assert (await other.get(f"/l/{f.token}")).status_code == 303, "another client is not limited"
        await eventually(lambda: _count(journal_kinds(tracker, f.invoice_id), "opened_by_machine", 2))
        await asyncio.sleep(0.3)  # a refused open would have been in the same batches as these
    kinds = await journal_kinds(tracker, f.invoice_id)
    assert sorted(kinds) == ["clicked", "opened_by_machine", "opened_by_machine"], kinds


async def test_the_bucket_refills(run_service, eventually):
    tracker = await run_service("tracker", rate_limits={"link": "1/8"})  # one token back every 8 s
    f = link()
    async with client_from(tracker.url, "127.0.0.4") as http:
        statuses = [(await http.get(f"/l/{f.token}")).status_code for _ in range(2)]
        assert statuses == [303, 429]

        async def allowed():
            return (await http.get(f"/l/{f.token}")).status_code == 303

        await eventually(allowed, timeout=30, interval=0.5, what="a token back in the bucket")


async def test_forwarded_for_counts_only_from_a_trusted_proxy(run_service):
    behind_proxy = await run_service("tracker", rate_limits={"link": "1/3600"}, trusted_proxies=["127.0.0.5"])
    direct = await run_service("tracker", rate_limits={"link": "1/3600"})
    f = link()
    async with client_from(behind_proxy.url, "127.0.0.5") as proxy:
        assert (await proxy.get(f"/l/{f.token}", headers={"X-Forwarded-For": "203.0.113.1"})).status_code == 303
        assert_limited(await proxy.get(f"/l/{f.token}", headers={"X-Forwarded-For": "203.0.113.1"}))
        # a client-supplied hop in front of the real one changes nothing: the proxy appends the peer it saw
        assert_limited(await proxy.get(f"/l/{f.token}", headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.1"}))
        assert (await proxy.get(f"/l/{f.token}", headers={"X-Forwarded-For": "203.0.113.2"})).status_code == 303
    async with client_from(direct.url, "127.0.0.6") as spoofer:
        assert (await spoofer.get(f"/l/{f.token}", headers={"X-Forwarded-For": "203.0.113.1"})).status_code == 303
        assert_limited(await spoofer.get(f"/l/{f.token}", headers={"X-Forwarded-For": "203.0.113.3"}))


async def test_sign_ins_are_limited_per_account_across_addresses(run_service):
    portal = await run_service("portal", rate_limits={"login-account": "3/3600"})
    async with httpx.AsyncClient(base_url=portal.url) as admin:
        for email in ("cm@acme.example", "other@acme.example"):
            made = await admin.put("/v1/admin/users", headers=ADMIN, json={
                "tenant_id": "acme", "email": email, "name": "cm", "role": "credit_manager", "password": PASSWORD})
            assert made.status_code in (200, 201), made.text
    for n, address in enumerate(("127.0.0.7", "127.0.0.8", "127.0.0.9")):
        async with client_from(portal.url, address) as guesser:
            wrong = await guesser.post("/login", data={"email": "CM@acme.example" if n else "cm@acme.example",
                                                       "password": f"guess {n}"})
            assert wrong.status_code == 401
    async with client_from(portal.url, "127.0.0.10") as owner:
        refused = await owner.post("/login", data={"email": "cm@acme.example", "password": PASSWORD})
        assert_limited(refused)
        assert "parcours_session" not in refused.headers.get("set-cookie", ""), "no session beyond the limit"
        other = await owner.post("/login", data={"email": "other@acme.example", "password": PASSWORD})
        assert other.status_code == 303, "another account is not limited"


async def test_sign_ins_are_limited_per_address(run_service):
    portal = await run_service("portal", rate_limits={"login": "2/3600", "magic-link": "1/3600"})
    async with client_from(portal.url, "127.0.0.11") as guesser, client_from(portal.url, "127.0.0.12") as other:
        for n in range(2):
            refused = await guesser.post("/login", data={"email": f"u{n}@acme.example", "password": "x"})
            assert refused.status_code == 401
        assert_limited(await guesser.post("/login", data={"email": "u9@acme.example", "password": "x"}))
        assert (await other.post("/login", data={"email": "u9@acme.example", "password": "x"})).status_code == 401
        assert (await guesser.post("/portal/sign-in", data={"email": "ap@acme.example"})).status_code == 200
        assert_limited(await guesser.post("/portal/sign-in", data={"email": "ap@acme.example"}))


async def test_partner_webhooks_are_limited(run_service):
    tracker = await run_service("tracker", rate_limits={"partner-ack": "1/3600"})
    async with client_from(tracker.url, "127.0.0.13") as partner:
        assert (await partner.post("/v1/acks/nobody", json={})).status_code == 404
        assert_limited(await partner.post("/v1/acks/nobody", json={}))
        metrics = (await partner.get("/metrics")).text
    assert 'parcours_http_requests_total{method="POST",route="/v1/acks/{channel}",status="429"} 1.0' in metrics


def test_buckets_stay_bounded_under_a_flood_of_addresses():
    buckets = TokenBuckets(5, 60, max_keys=1000)
    for n in range(50_000):
        assert buckets.take(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", now=n * 0.001) == 0
    assert len(buckets) <= 1000
    later = TokenBuckets(1, 1, max_keys=1000)
    for n in range(500):
        later.take(n, now=0.0)
    later.take("late", now=5.0)  # the idle ones are full again: dropped
    assert len(later) == 1


def test_client_address_by_ipv6_network_and_trusted_hops():
    plain = ClientAddress([])
    assert plain({"client": ("2001:db8:1:2::5", 1), "headers": []}) == plain({"client": ("2001:db8:1:2::9", 1),
                                                                              "headers": []})
    trusted = ClientAddress(["10.0.0.0/8"])
    hops = {"client": ("10.0.0.1", 1), "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.1, 10.1.1.1")]}
    assert trusted(hops) == "203.0.113.1"


async def _has(awaitable, kind: str) -> bool:
    return kind in await awaitable


async def _count(awaitable, kind: str, count: int) -> bool:
    return (await awaitable).count(kind) == count


@pytest.fixture(autouse=True)
def _loopback_aliases():
    """127.0.0.0/8 answers on lo on Linux; say so plainly if this box does not."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.2", 0))
        except OSError:
            pytest.skip("no 127.0.0.2 on this machine's loopback")


@pytest.mark.parametrize("service", ["tracker", "portal", "channels"])
def test_every_declared_route_exists(service):
    """A limit on a path the app does not serve would protect nothing, silently."""
    import importlib

    from fastapi.routing import iter_route_contexts

    app_module = importlib.import_module(f"parcours_{service}.app")
    app = app_module.create_app(SimpleNamespace(settings=SimpleNamespace(), extras={}))
    served = {f"{method} {route.path}" for route in iter_route_contexts(app.routes)
              for method in getattr(route, "methods", None) or ()}
    declared = {route for limit in app_module.RATE_LIMITS for route in limit.routes}
    assert declared and declared <= served, declared - served

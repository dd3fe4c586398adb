"""Console sign-in through an OpenID Connect provider (a local one following the spec): the code
flow with PKCE ends in the same session as a password, for the console user of the verified e-mail;
a forged state, an unknown or disabled user, or a token the provider's keys do not verify sign
nobody in."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from parcours_devstack.ports import free_port

from .oidc_provider import OidcProvider

CLIENT = {"oidc_client_id": "parcours-console", "oidc_client_secret": "provider-given-secret"}


@pytest.fixture
async def provider():
    port = free_port()  # the portal's, registered at the provider as its redirect URI's
    provider = await OidcProvider(client_id=CLIENT["oidc_client_id"], client_secret=CLIENT["oidc_client_secret"],
                                  redirect_uri=f"http://127.0.0.1:{port}/login/oidc/callback").start()
    provider.portal_port = port
    yield provider
    await provider.server.stop()


@pytest.fixture
async def portal(run_service, provider):
    return await run_service("portal", http_port=provider.portal_port,
                             public_url=f"http://127.0.0.1:{provider.portal_port}", oidc_issuer=provider.url, **CLIENT)


async def sign_in(portal, provider, email: str, *, state: str | None = None) -> tuple[httpx.AsyncClient, httpx.Response]:
    provider.email = email
    http = httpx.AsyncClient(base_url=portal.url, headers={"Accept": "text/html"}, timeout=10)
    start = await http.get("/login/oidc", params={"next": "/console/incidents"})
    assert start.status_code == 303 and start.headers["location"].startswith(f"{provider.url}/authorize?")
    async with httpx.AsyncClient(timeout=10) as browser:
        back = await browser.get(start.headers["location"])
    assert back.status_code == 303
    callback = back.headers["location"]
    if state is not None:
        callback = callback.split("&state=")[0] + f"&state={state}"
    return http, await http.get(callback)


async def test_oidc_sign_in(provider, portal, make_user):
    await make_user("cm@acme.example")
    async with httpx.AsyncClient(base_url=portal.url) as anonymous:
        assert 'href="/login/oidc?next=/console"' in (await anonymous.get("/login")).text

    http, done = await sign_in(portal, provider, "CM@acme.example")
    assert done.status_code == 303 and done.headers["location"] == "/console/incidents"
    page = await http.get("/console")
    assert page.status_code == 200 and "cm (credit_manager)" in page.text
    replayed = await http.get("/login/oidc/callback?code=used&state=x")
    assert replayed.status_code == 400  # the pending sign-in is gone with its cookie

    forged, refused = await sign_in(portal, provider, "cm@acme.example", state="not-the-state")
    assert refused.status_code == 400 and "parcours_session" not in forged.cookies
    stranger, unknown = await sign_in(portal, provider, "nobody@acme.example")
    assert unknown.status_code == 403 and "Aucun compte actif" in unknown.text
    provider.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rogue, bad = await sign_in(portal, provider, "cm@acme.example")
    assert bad.status_code == 401 and "parcours_session" not in rogue.cookies
    for client in (http, forged, stranger, rogue):
        await client.aclose()

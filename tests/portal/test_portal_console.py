"""The console over HTTP against the real service, broker and database: sign-in and sessions,
roles, strict tenant isolation, the invoice list and journey built from the events."""

from __future__ import annotations

import re
import uuid

import httpx

from parcours_contracts import IncidentResolutionRequested, topics

from .conftest import PASSWORD


def form_token(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


async def test_sign_in_sessions_and_cookie(portal, make_user):
    await make_user("cm@acme.example")
    async with httpx.AsyncClient(base_url=portal.url, headers={"Accept": "text/html"}) as http:
        anonymous = await http.get("/console/incidents")
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/console/incidents"
        login_page = await http.get("/login")
        assert '<label for="email">' in login_page.text and '<label for="password">' in login_page.text

        wrong = await http.post("/login", data={"email": "cm@acme.example", "password": "not the password"})
        unknown = await http.post("/login", data={"email": "nobody@acme.example", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401 and "parcours_session" not in http.cookies

        ok = await http.post("/login", data={"email": "CM@acme.example ", "password": PASSWORD,
                                             "next": "https://evil.example/"})
        assert ok.status_code == 303 and ok.headers["location"] == "/console"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        page = await http.get("/console")
        assert page.status_code == 200 and "cm (credit_manager)" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]

        # A tampered cookie is no session; sign-out needs the session's form token.
        session = http.cookies["parcours_session"]
        async with httpx.AsyncClient(base_url=portal.url, cookies={"parcours_session": session[:-2] + "xx"}) as other:
            assert (await other.get("/console")).status_code == 303
        assert (await http.post("/logout")).status_code == 403
        out = await http.post("/logout", data={"form_token": form_token(page.text)})
        assert out.status_code == 303 and (await http.get("/console")).status_code == 303

    async with httpx.AsyncClient(base_url=portal.url) as http:
        weak = await http.put("/v1/admin/users", headers={"Authorization": "Bearer dev-admin-token"},
                              json={"tenant_id": "acme", "email": "x@acme.example", "name": "X", "role": "owner",
                                    "password": "short"})
        assert weak.status_code == 422
        assert {e["pointer"] for e in weak.json()["errors"]} == {"/role", "/password"}
        stolen = await http.put("/v1/admin/users", headers={"Authorization": "Bearer dev-admin-token"},
                                json={"tenant_id": "globex", "email": "cm@acme.example", "name": "X",
                                      "role": "admin", "password": PASSWORD})
        assert stolen.status_code == 409
        assert (await http.put("/v1/admin/users", json={})).status_code == 401


async def test_journey_with_evidence_filters_and_aging(portal, signed_in, journey, publish, page_shows, eventually):
    seen, other = journey(number="F-SEEN"), journey(number="F-QUIET", customer_ref="CUST-2")
    incident = seen.incident()
    await publish(*seen.delivered(), seen.clicked(), seen.lifecycle("viewed", 203), seen.reminder(), incident,
                  *other.delivered())
    http = await signed_in("cm@acme.example")

    expected = ["received", "dispatch_requested", "dispatched", "lifecycle", "clicked", "lifecycle", "reminder_due",
                "incident_opened"]  # in the order they happened, whatever the order they arrived in

    async def whole_journey():
        page = await http.get(f"/console/invoices/{seen.invoice_id}")
        return page.text if len(re.findall(r'data-kind="([a-z_]+)"', page.text)) == len(expected) else None
    html = await eventually(whole_journey, what="every event of the journey")
    assert re.findall(r'data-kind="([a-z_]+)"', html) == expected
    for evidence in ("ap@cust-1.example &lt;m-1@parcours.test&gt;", "Mozilla/5.0 (evidence)", "203.0.113.7", "not_received"):
        assert evidence in html
    assert "Dernière relance : first-reminder" in html

    async def delivery_table():
        listing = await http.get("/console")
        table = re.search(r'<table id="delivery">.*?</table>', listing.text, re.S).group(0)
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", table, re.S)]
        return (listing, cells) if cells[:2] == ["email_link", "2"] else None
    both, cells = await eventually(delivery_table, what="both dispatches counted")
    assert cells == ["email_link", "2", "1", "50 %", "0.5"]  # F-SEEN viewed 28 minutes after its dispatch
    assert "F-SEEN" in both.text and "F-QUIET" in both.text
    assert "1 200.00 EUR" in both.text and "31–60 j" in both.text
    assert "Relancées : 1, dont payées depuis : 0." in both.text
    with_incident = await http.get("/console", params={"incident": "open"})
    assert "F-SEEN" in with_incident.text and "F-QUIET" not in with_incident.text
    by_status = await http.get("/console", params={"status": "sent", "customer": "CUST-2"})
    assert "F-QUIET" in by_status.text and "F-SEEN" not in by_status.text
    english = await http.get("/console", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Aging (open amounts)" in english.text and '<html lang="en">' in english.text

    bad = await http.get("/console", params={"due_from": "yesterday", "incident": "maybe"},
                         headers={"Accept": "application/json"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert {e["pointer"] for e in bad.json()["errors"]} == {"/due_from", "/incident"}


async def test_roles_and_resolving_an_incident(portal, signed_in, journey, publish, page_shows, read_topic):
    flow = journey()
    incident = flow.incident()
    await publish(*flow.delivered(), incident)
    viewer = await signed_in("viewer@acme.example", role="viewer")
    page = await page_shows(viewer, "/console/incidents", "not_received")
    assert "Résoudre" not in page.text
    refused = await viewer.post(f"/console/incidents/{incident.incident_id}/resolve",
                                data={"resolution": "called", "form_token": form_token(page.text)})
    assert refused.status_code == 403

    manager = await signed_in("cm@acme.example")
    page = await manager.get("/console/incidents")
    token = form_token(page.text)
    missing = await manager.post(f"/console/incidents/{incident.incident_id}/resolve",
                                 data={"resolution": " ", "form_token": token})
    assert missing.status_code == 422 and missing.json()["errors"][0]["pointer"] == "/resolution"
    no_token = await manager.post(f"/console/incidents/{incident.incident_id}/resolve", data={"resolution": "x"})
    assert no_token.status_code == 403
    done = await manager.post(f"/console/incidents/{incident.incident_id}/resolve",
                              data={"resolution": "Called the customer", "form_token": token})
    assert done.status_code == 303
    again = await manager.post(f"/console/incidents/{incident.incident_id}/resolve",
                               data={"resolution": "twice", "form_token": token})
    assert again.status_code == 303
    assert "Résolution demandée" in (await manager.get("/console/incidents")).text

    requests = await read_topic(topics.PORTAL_ACTIONS, lambda events: events)
    assert [(type(e), e.incident_id, e.resolution, e.actor) for e in requests] == [
        (IncidentResolutionRequested, incident.incident_id, "Called the customer", "cm@acme.example")]


async def test_tenants_never_see_each_other(portal, signed_in, journey, publish, page_shows):
    ours, theirs = journey(number="F-ACME"), journey(tenant_id="globex", number="F-GLOBEX")
    their_incident = theirs.incident()
    await publish(*ours.delivered(), *theirs.delivered(), their_incident)
    globex = await signed_in("cm@globex.example", tenant_id="globex")
    await page_shows(globex, "/console", "F-GLOBEX")
    acme = await signed_in("cm@acme.example")
    listing = await page_shows(acme, "/console", "F-ACME")
    assert "F-GLOBEX" not in listing.text
    assert (await acme.get(f"/console/invoices/{theirs.invoice_id}")).status_code == 404
    assert (await acme.get(f"/console/invoices/{uuid.uuid4()}")).status_code == 404
    await page_shows(globex, "/console/incidents", "not_received")
    assert "not_received" not in (await acme.get("/console/incidents")).text
    token = form_token((await acme.get("/console")).text)
    stolen = await acme.post(f"/console/incidents/{their_incident.incident_id}/resolve",
                             data={"resolution": "not mine", "form_token": token})
    assert stolen.status_code == 404


async def test_admins_manage_their_tenants_users(portal, signed_in):
    admin = await signed_in("admin@acme.example", role="admin")
    manager = await signed_in("cm@acme.example")
    assert (await manager.get("/console/users")).status_code == 403
    page = await admin.get("/console/users")
    assert "cm@acme.example" in page.text and 'href="/console/users"' in page.text
    token = form_token(page.text)
    forged = await manager.post("/console/users", data={
        "email": "evil@acme.example", "name": "Evil", "role": "admin", "password": "x" * 12,
        "form_token": form_token((await manager.get("/console")).text)})
    assert forged.status_code == 403

    weak = await admin.post("/console/users", data={"email": "new", "name": " ", "role": "owner", "password": "short",
                                                     "form_token": token})
    assert weak.status_code == 422 and weak.text.count('aria-invalid="true"') == 3
    made = await admin.post("/console/users", data={"email": "Viewer@acme.example", "name": "Vi", "role": "viewer",
                                                     "password": "a long enough one", "form_token": token})
    assert made.status_code == 303
    async with httpx.AsyncClient(base_url=portal.url) as http:
        login = await http.post("/login", data={"email": "viewer@acme.example", "password": "a long enough one"})
        assert login.status_code == 303
    await signed_in("cm@globex.example", tenant_id="globex")
    taken = await admin.post("/console/users", data={"email": "cm@globex.example", "name": "X", "role": "viewer",
                                                      "password": "a long enough one", "form_token": token})
    assert taken.status_code == 422 and "autre client" in taken.text

"""An admin disables a user of their tenant from the users page (out at their next request) and
enables them again; never themselves, never another tenant's user, never as a non-admin."""

from __future__ import annotations

import re

import httpx

from .conftest import PASSWORD
from .test_portal_console import form_token


async def test_admin_disables_and_enables_a_user(portal, signed_in, make_user):
    admin = await signed_in("admin@acme.example", role="admin")
    viewer = await signed_in("viewer@acme.example", role="viewer")
    theirs = await make_user("cm@globex.example", tenant_id="globex")
    page = await admin.get("/console/users")
    token = form_token(page.text)
    ids = dict((email, uid) for uid, email in re.findall(r'<tr id="user-([0-9a-f-]+)"><td>([^<]+)</td>', page.text))
    assert set(ids) == {"admin@acme.example", "viewer@acme.example"}  # the tenant's users only

    assert (await admin.post(f"/console/users/{ids['admin@acme.example']}/disable",
                             data={"form_token": token})).status_code == 403  # not oneself
    assert (await viewer.post(f"/console/users/{ids['admin@acme.example']}/disable",
                              data={"form_token": form_token((await viewer.get("/console")).text)})).status_code == 403
    other = await admin.post(f"/console/users/{theirs['id']}/disable", data={"form_token": token})
    assert other.status_code == 404

    assert (await admin.post(f"/console/users/{ids['viewer@acme.example']}/disable",
                             data={"form_token": token})).status_code == 303
    assert (await viewer.get("/console")).status_code == 303  # signed out at once
    assert "désactivé" in (await admin.get("/console/users")).text
    async with httpx.AsyncClient(base_url=portal.url) as http:
        refused = await http.post("/login", data={"email": "viewer@acme.example", "password": PASSWORD})
        assert refused.status_code == 401
        assert (await admin.post(f"/console/users/{ids['viewer@acme.example']}/enable",
                                 data={"form_token": token})).status_code == 303
        assert (await http.post("/login", data={"email": "viewer@acme.example", "password": PASSWORD})).status_code == 303

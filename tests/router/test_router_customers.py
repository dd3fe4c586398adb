"""The customer directory over HTTP: create/replace/read/list/delete, validation with JSON
pointers, and tenant isolation, on a router running on the real database and broker."""

from __future__ import annotations

import httpx


async def test_put_creates_then_replaces_and_get_returns_the_entry(client_for, helpers):
    acme = await client_for("acme")
    created = await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body(group="key-accounts"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["ref"] == "CUST-ALPHA" and body["group"] == "key-accounts" and body["language"] == "fr"
    assert body["channels"] == ["email_link", "email_attachment"]
    assert body["contacts"][0] == {"email": "ap@alpha.example", "name": "Accounts payable", "role": "accounting"}
    assert body["contacts"][1]["email"] == "cfo@alpha.example"
    assert body["tags"] == [], "tags are optional"
    assert body["timezone"] is None, "the time zone is optional"

    replaced = await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body(
        name="Alpha Group", language="en", channels=["email_attachment"], contacts=[{"email": "billing@alpha.example"}]))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["created_at"] == body["created_at"]

    read = await acme.get("/v1/customers/CUST-ALPHA")
    assert read.status_code == 200
    entry = read.json()
    assert (entry["name"], entry["group"], entry["language"]) == ("Alpha Group", "default", "en")
    assert entry["channels"] == ["email_attachment"]
    assert [c["email"] for c in entry["contacts"]] == ["billing@alpha.example"]


async def test_unacceptable_entries_answer_422_with_pointers_and_store_nothing(client_for, helpers):
    acme = await client_for("acme")
    original = helpers.customer_body()
    assert (await acme.put("/v1/customers/KEPT", json=original)).status_code == 201

    cases = {
        "unknown channel": (helpers.customer_body(channels=["email_link", "fax"]), "/channels/1"),
        "channel twice": (helpers.customer_body(channels=["email_link", "email_link"]), "/channels/1"),
        "no channel": (helpers.customer_body(channels=[]), "/channels"),
        "duplicate contact": (helpers.customer_body(contacts=[{"email": "ap@alpha.example"}, {"email": "x@alpha.example"},
                                                              {"email": "AP@alpha.example"}]), "/contacts/2/email"),
        "bad email": (helpers.customer_body(contacts=[{"email": "not-an-email"}]), "/contacts/0/email"),
        "missing contacts": ({"name": "No contacts", "channels": ["email_link"]}, "/contacts"),
        "empty contacts": (helpers.customer_body(contacts=[]) | {"contacts": []}, "/contacts"),
        "unknown role": (helpers.customer_body(contacts=[{"email": "a@b.example", "role": "boss"}]), "/contacts/0/role"),
        "bad language": (helpers.customer_body(language="de"), "/language"),
        "tag twice": (helpers.customer_body(tags=["vip", "public", "vip"]), "/tags/2"),
        "tag too long": (helpers.customer_body(tags=["x" * 65]), "/tags/0"),
        "empty tag": (helpers.customer_body(tags=[""]), "/tags/0"),
        "too many tags": (helpers.customer_body(tags=[f"t{i}" for i in range(21)]), "/tags"),
        "unknown time zone": (helpers.customer_body(timezone="Mars/Olympus"), "/timezone"),
        "time zone as a path": (helpers.customer_body(timezone="../etc/passwd"), "/timezone"),
        "empty time zone": (helpers.customer_body(timezone=""), "/timezone"),
    }
    for label, (body, pointer) in cases.items():
        for ref in ("NEW", "KEPT"):
            response = await acme.put(f"/v1/customers/{ref}", json=body)
            assert response.status_code == 422, f"{label}: {response.text}"
            assert response.headers["content-type"].startswith("application/problem+json")
            pointers = [error["pointer"] for error in response.json()["errors"]]
            assert pointer in pointers, f"{label}: {pointers}"

    unknown = await acme.put("/v1/customers/NEW", json=helpers.customer_body(channels=["fax"]))
    detail = unknown.json()["errors"][0]["detail"]
    assert "email_link" in detail and "email_attachment" in detail, "the error lists the offered channels"

    assert (await acme.get("/v1/customers/NEW")).status_code == 404
    kept = (await acme.get("/v1/customers/KEPT")).json()
    assert kept["channels"] == original["channels"]
    assert [c["email"] for c in kept["contacts"]] == [c["email"] for c in original["contacts"]]
    assert kept["timezone"] is None, "a refused time zone is not stored"


async def test_bad_refs_are_refused(client_for, helpers):
    acme = await client_for("acme")
    for ref in ("has space", "a" * 65, "semi;colon"):
        response = await acme.put(f"/v1/customers/{ref}", json=helpers.customer_body())
        assert response.status_code == 422, ref
        assert response.json()["errors"][0]["in"] == "path"
    assert (await acme.get("/v1/customers")).json()["items"] == []


async def test_list_pages_by_ref_and_filters_by_group(client_for, helpers):
    acme = await client_for("acme")
    refs = [f"C-{n:02d}" for n in range(7)]
    for n, ref in enumerate(reversed(refs)):
        group = "key-accounts" if n % 2 else "default"
        assert (await acme.put(f"/v1/customers/{ref}", json=helpers.customer_body(group=group))).status_code == 201

    listed, cursor = [], None
    while True:
        page = (await acme.get("/v1/customers", params={"limit": 3} | ({"cursor": cursor} if cursor else {}))).json()
        assert len(page["items"]) <= 3
        listed.extend(item["ref"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed == refs

    key_accounts = (await acme.get("/v1/customers", params={"group": "key-accounts"})).json()
    assert [item["ref"] for item in key_accounts["items"]] == ["C-01", "C-03", "C-05"]
    assert key_accounts["next_cursor"] is None

    bad = await acme.get("/v1/customers", params={"cursor": "%%%"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/cursor"
    assert (await acme.get("/v1/customers", params={"limit": 0})).status_code == 422


async def test_delete_removes_the_entry(client_for, helpers):
    acme = await client_for("acme")
    await acme.put("/v1/customers/GONE", json=helpers.customer_body())
    deleted = await acme.delete("/v1/customers/GONE")
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await acme.get("/v1/customers/GONE")).status_code == 404
    again = await acme.delete("/v1/customers/GONE")
    assert again.status_code == 404
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_a_tenant_cannot_see_or_touch_another_tenants_customer(client_for, helpers):
    acme, globex = await client_for("acme"), await client_for("globex")
    assert (await acme.put("/v1/customers/SHARED-REF", json=helpers.customer_body())).status_code == 201

    assert (await globex.get("/v1/customers/SHARED-REF")).status_code == 404
    assert (await globex.get("/v1/customers")).json()["items"] == []
    assert (await globex.delete("/v1/customers/SHARED-REF")).status_code == 404
    assert (await acme.get("/v1/customers/SHARED-REF")).status_code == 200, "globex's delete touched nothing"

    # The same ref is globex's own, separate entry.
    mine = await globex.put("/v1/customers/SHARED-REF", json=helpers.customer_body(name="Globex's customer"))
    assert mine.status_code == 201
    assert (await acme.get("/v1/customers/SHARED-REF")).json()["name"] == "Alpha Industries SAS"


async def test_requests_without_a_valid_key_are_refused(router, helpers):
    async with httpx.AsyncClient(base_url=router.url) as anonymous:
        missing = await anonymous.get("/v1/customers")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        wrong = await anonymous.put("/v1/customers/X", json=helpers.customer_body(),
                                    headers={"Authorization": "Bearer prc_nope_nope"})
        assert wrong.status_code == 401


async def test_directory_changes_are_announced_in_order_per_customer(client_for, helpers, read_topic):
    from parcours_contracts import CustomerChanged, topics

    changes = await read_topic(topics.CUSTOMER_EVENTS)
    acme = await client_for("acme")
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body(group="key-accounts",
                                                                           tags=["vip", "public-sector"],
                                                                           timezone="America/Montreal"))
    tagged = await acme.get("/v1/customers/CUST-ALPHA")
    assert tagged.json()["tags"] == ["vip", "public-sector"], "stored and read back in order"
    assert tagged.json()["timezone"] == "America/Montreal"
    await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body(group="default", language="en"))
    refused = await acme.put("/v1/customers/CUST-ALPHA", json=helpers.customer_body(channels=["fax"]))
    assert refused.status_code == 422
    await acme.delete("/v1/customers/CUST-ALPHA")

    await changes.wait_for(lambda e: isinstance(e, CustomerChanged) and e.customer_ref == "CUST-ALPHA", count=3)
    await changes.drain()
    seen = [e for e in changes.seen if isinstance(e, CustomerChanged)]
    assert [(e.group, e.language, e.deleted) for e in seen] == [
        ("key-accounts", "fr", False), ("default", "en", False), (None, None, True)]
    assert [e.tags for e in seen] == [["vip", "public-sector"], [], []], "a replacement without tags clears them"
    assert [e.timezone for e in seen] == ["America/Montreal", None, None], "so does one without a time zone"
    assert {e.tenant_id for e in seen} == {"acme"} and {e.key for e in seen} == {"acme:CUST-ALPHA"}

"""Journeys built from events on the real broker: order, out-of-order arrival, duplicates,
tenant isolation, listing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from parcours_tracker.store.models import JournalEntry


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


VERDICTS = {"anomaly", "incident_opened", "incident_resolved"}


def facts(journey: dict) -> list[str]:
    """The kinds of the journey's facts (without the tracker's own verdicts)."""
    return [e["kind"] for e in journey["events"] if e["kind"] not in VERDICTS]


async def journey_with(client, key, invoice_id, count: int, eventually):
    """The journey once it holds `count` facts."""
    async def ready():
        response = await client.get(f"/v1/invoices/{invoice_id}/journey", headers=auth(key))
        return response.json() if response.status_code == 200 and len(facts(response.json())) == count else None
    return await eventually(ready, what=f"journey of {invoice_id} with {count} events")


async def test_journey_lists_every_fact_in_the_order_it_happened(tracker, client, tenant_key, publish, flow,
                                                                 eventually):
    key = await tenant_key(tracker, tenant_id="acme")
    f = flow(number="F-2026-042", customer_ref="GLOBEX")
    events = [f.received(0), f.dispatch_requested(1), f.dispatched(2), f.acked(3), f.clicked(4), f.reminder_due(60),
              f.dispatch_requested(61, uuid.uuid4(), purpose="reminder"),
              f.dispatched(62, dispatch_id=uuid.uuid4(), purpose="reminder")]
    await publish(*reversed(events))

    journey = await journey_with(client, key, f.invoice_id, 8, eventually)
    assert [e["kind"] for e in journey["events"]] == [
        "received", "dispatch_requested", "dispatched", "acked", "clicked", "reminder_due", "dispatch_requested",
        "reminded"]
    assert (journey["number"], journey["customer_ref"], journey["status"]) == ("F-2026-042", "GLOBEX", "viewed")
    assert journey["invoice_id"] == str(f.invoice_id)
    assert journey["status_at"] == f.clicked(4).occurred_at.isoformat().replace("+00:00", "Z")
    assert [e["event_id"] for e in journey["events"]] == [str(event.event_id) for event in events]
    assert [e["at"] for e in journey["events"]] == [event.occurred_at.isoformat().replace("+00:00", "Z")
                                                    for event in events]
    assert journey["events"][2]["detail"]["messages"][0]["message_id"] == "<m1@parcours>"
    assert journey["events"][4]["detail"]["ip"] == "203.0.113.7"


async def test_out_of_order_arrival_gives_the_same_journey_as_in_order(tracker, client, tenant_key, publish, flow,
                                                                      eventually):
    key = await tenant_key(tracker, tenant_id="acme")
    in_order, shuffled = flow(number="F-IN-ORDER"), flow(number="F-SHUFFLED")
    await publish(in_order.received(0), in_order.dispatch_requested(1), in_order.dispatched(2), in_order.acked(3))
    # Acked before received, dispatched before dispatch_requested: as different topics may deliver them.
    await publish(shuffled.acked(3), shuffled.dispatched(2), shuffled.dispatch_requested(1))

    early = await journey_with(client, key, shuffled.invoice_id, 3, eventually)
    assert early["status"] == "delivered", "an ack proves arrival even before the invoice itself is known"
    assert early["number"] == "F-SHUFFLED", "the dispatch request's copy of the summary fills in"
    await publish(shuffled.received(0))

    expected = await journey_with(client, key, in_order.invoice_id, 4, eventually)
    actual = await journey_with(client, key, shuffled.invoice_id, 4, eventually)
    kinds = ["received", "dispatch_requested", "dispatched", "acked"]
    assert [e["kind"] for e in expected["events"]] == [e["kind"] for e in actual["events"]] == kinds
    for field in ("status", "first_dispatched_at", "acked_at", "customer_ref"):
        assert actual[field] == expected[field], field
    assert actual["status"] == "delivered"
    assert actual["status_at"] == shuffled.acked(3).occurred_at.isoformat().replace("+00:00", "Z")


async def test_incidents_show_and_clear_as_later_facts_arrive(tracker, client, tenant_key, publish, flow,
                                                             eventually):
    key = await tenant_key(tracker, tenant_id="acme")
    unroutable, failing = flow(number="F-UNROUTABLE"), flow(number="F-FAILING")
    await publish(unroutable.unroutable(1), unroutable.received(0), failing.received(0),
                  failing.dispatch_requested(1), failing.failed(2))
    assert (await journey_with(client, key, unroutable.invoice_id, 2, eventually))["status"] == "unroutable"
    assert (await journey_with(client, key, failing.invoice_id, 3, eventually))["status"] == "failed"

    fallback = uuid.uuid4()
    await publish(failing.dispatched(4, dispatch_id=fallback), failing.dispatch_requested(3, fallback))
    cleared = await journey_with(client, key, failing.invoice_id, 5, eventually)
    assert cleared["status"] == "sent"
    # The last channel failed (no fallback left): an incident opened, and the later dispatch settled it.
    assert [e["kind"] for e in cleared["events"]] == [
        "received", "dispatch_requested", "dispatch_failed", "dispatch_requested", "dispatched", "incident_opened",
        "incident_resolved"]


async def test_a_redelivered_event_has_one_journal_entry(tracker, client, tenant_key, publish, flow, eventually):
    key = await tenant_key(tracker, tenant_id="acme")
    f = flow()
    received = f.received(0)
    await publish(received, received, received, f.dispatched(2))
    journey = await journey_with(client, key, f.invoice_id, 2, eventually)
    assert [e["kind"] for e in journey["events"]] == ["received", "dispatched"]
    async with tracker.ctx.sessions() as session:
        count = (await session.execute(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.event_id == received.event_id)
        )).scalar_one()
    assert count == 1


async def test_journeys_are_private_to_their_tenant(tracker, client, tenant_key, publish, flow, eventually):
    acme_key = await tenant_key(tracker, tenant_id="acme")
    other_key = await tenant_key(tracker, tenant_id="initech", tenant_name="Initech")
    f = flow(tenant_id="acme")
    await publish(f.received(0))
    await journey_with(client, acme_key, f.invoice_id, 1, eventually)

    other = await client.get(f"/v1/invoices/{f.invoice_id}/journey", headers=auth(other_key))
    unknown = await client.get(f"/v1/invoices/{uuid.uuid4()}/journey", headers=auth(acme_key))
    assert other.status_code == unknown.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["detail"] == unknown.json()["detail"], "another tenant's invoice looks unknown"
    assert (await client.get(f"/v1/invoices/{f.invoice_id}/journey")).status_code == 401
    listing = await client.get("/v1/invoices", headers=auth(other_key))
    assert listing.json() == {"items": [], "next_cursor": None}


async def test_invoice_list_filters_and_pages(tracker, client, tenant_key, publish, flow, eventually):
    key = await tenant_key(tracker, tenant_id="acme")
    first, second, third = flow(number="F-1", customer_ref="A"), flow(number="F-2", customer_ref="B"), \
        flow(number="F-3", customer_ref="A")
    for f in (first, second, third):  # one at a time, so that the listing order is known
        await publish(f.received(0))
        await journey_with(client, key, f.invoice_id, 1, eventually)
    mark = datetime.now(timezone.utc)
    await publish(second.dispatched(2))
    await journey_with(client, key, second.invoice_id, 2, eventually)

    page = (await client.get("/v1/invoices", params={"limit": 2}, headers=auth(key))).json()
    assert [item["number"] for item in page["items"]] == ["F-3", "F-2"]
    rest = (await client.get("/v1/invoices", params={"limit": 2, "cursor": page["next_cursor"]},
                             headers=auth(key))).json()
    assert ([item["number"] for item in rest["items"]], rest["next_cursor"]) == (["F-1"], None)

    by_customer = (await client.get("/v1/invoices", params={"customer": "A"}, headers=auth(key))).json()
    assert [item["number"] for item in by_customer["items"]] == ["F-3", "F-1"]
    by_status = (await client.get("/v1/invoices", params={"status": "sent"}, headers=auth(key))).json()
    assert [(item["number"], item["status"]) for item in by_status["items"]] == [("F-2", "sent")]

    bad = await client.get("/v1/invoices", params={"status": "lost", "cursor": "x"}, headers=auth(key))
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/status"

    changed = (await client.get("/v1/invoices", params={"since": mark.isoformat()}, headers=auth(key))).json()
    assert [item["number"] for item in changed["items"]] == ["F-2"], "only what changed since the mark"
    everything = {"since": (mark - timedelta(hours=1)).isoformat(), "limit": 2}
    page = (await client.get("/v1/invoices", params=everything, headers=auth(key))).json()
    rest = (await client.get("/v1/invoices", params={**everything, "cursor": page["next_cursor"]},
                             headers=auth(key))).json()
    assert [i["number"] for i in page["items"] + rest["items"]] == ["F-3", "F-2", "F-1"] and not rest["next_cursor"]
    csv_since = await client.get("/v1/invoices.csv", params={"since": mark.isoformat()}, headers=auth(key))
    assert csv_since.text.count("F-") == 1 and "F-2" in csv_since.text
    naive = await client.get("/v1/invoices", params={"since": "2026-11-28T10:00:00"}, headers=auth(key))
    assert naive.status_code == 422 and naive.json()["errors"][0]["pointer"] == "/since"

    spec = (await client.get("/openapi.json")).json()
    assert {"/l/{token}", "/v/{token}", "/v1/acks/{channel}", "/v1/invoices", "/v1/invoices/{invoice_id}/journey"} \
        <= set(spec["paths"])


async def test_csv_export_follows_the_filters_and_neutralises_formulas(tracker, client, tenant_key, publish, flow,
                                                                      eventually):
    import csv
    import io

    key = await tenant_key(tracker, tenant_id="acme")
    hostile, plain = flow(number="=HYPERLINK(\"x\")", customer_ref="-EVIL"), flow(number="F-PLAIN", customer_ref="OK")
    for f in (hostile, plain):
        await publish(f.received(0))
        await journey_with(client, key, f.invoice_id, 1, eventually)
    await publish(plain.dispatched(2))
    await journey_with(client, key, plain.invoice_id, 2, eventually)

    response = await client.get("/v1/invoices.csv", headers=auth(key))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["number"], r["customer_ref"], r["status"], r["code"]) for r in rows] == [
        ("F-PLAIN", "OK", "sent", "201"), ("'=HYPERLINK(\"x\")", "'-EVIL", "received", "200")]
    filtered = await client.get("/v1/invoices.csv", params={"status": "sent"}, headers=auth(key))
    assert [r["number"] for r in csv.DictReader(io.StringIO(filtered.text))] == ["F-PLAIN"]
    assert (await client.get("/v1/invoices.csv")).status_code == 401
    assert (await client.get("/v1/invoices.csv", params={"status": "x"}, headers=auth(key))).status_code == 422

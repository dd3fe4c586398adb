"""Recipient actions and payments through the API, on the real broker and DB: lifecycle changes
published through the outbox, anomalies journaled not applied, payments idempotent, bad input
changing nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from parcours_contracts import InvoiceLifecycleChanged, PaymentPromised, PaymentRecorded, topics
from parcours_runtime.outbox import outbox_table
from parcours_tracker.store.models import JournalEntry, Payment


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def known_invoice(tracker, client, key, publish, flow, eventually, *facts):
    f = flow()
    await publish(f.received(0), f.dispatch_requested(1), f.dispatched(2), *[make(f) for make in facts])

    async def sent():
        journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey", headers=auth(key))).json()
        return journey.get("status") == "sent" and journey.get("number") is not None  # its amount is known too
    await eventually(sent, what="invoice sent")
    return f


async def journal_count(tracker, invoice_id) -> int:
    async with tracker.ctx.sessions() as session:
        return (await session.execute(select(func.count()).select_from(JournalEntry)
                                      .where(JournalEntry.invoice_id == invoice_id))).scalar_one()


async def test_lifecycle_changes_are_published_with_codes(tracker, client, tenant_key, publish, flow, eventually,
                                                         read_topic):
    key = await tenant_key(tracker)
    f = await known_invoice(tracker, client, key, publish, flow, eventually)
    before_dispute = datetime.now(timezone.utc)
    disputed = await client.post(f"/v1/invoices/{f.invoice_id}/events", headers=auth(key),
                                 json={"kind": "disputed", "reason": "quantities do not match the delivery"})
    assert disputed.status_code == 202, disputed.text
    assert disputed.json() | {"event_id": None} == {"event_id": None, "applied": True, "status": "EN_LITIGE",
                                                     "code": 207, "anomaly": None}
    approved = await client.post(f"/v1/invoices/{f.invoice_id}/events", headers=auth(key), json={"kind": "approved"})
    assert (approved.json()["status"], approved.json()["code"]) == ("APPROUVEE", 205)

    changes = await read_topic(topics.INVOICE_LIFECYCLE, until=lambda events: any(
        e.status == "APPROUVEE" for e in events))
    mine = [e for e in changes if e.invoice_id == f.invoice_id]
    assert all(isinstance(e, InvoiceLifecycleChanged) for e in mine)
    # Topics deliver received / dispatch_requested / dispatched in any order: every change follows the last one.
    assert mine[0].previous_status == "pending"
    assert all(later.previous_status == earlier.status for earlier, later in zip(mine, mine[1:]))
    assert [(e.status, e.code) for e in mine[-3:]] == [("sent", 201), ("EN_LITIGE", 207), ("APPROUVEE", 205)]
    assert (mine[-2].source, mine[-2].reason) == ("api", "quantities do not match the delivery")
    assert mine[-3].source == "email_link"
    # status_at is when the causing fact happened (the dispatch, two hours ago), not when we published
    assert mine[-3].status_at == f.start + timedelta(minutes=2) < mine[-3].occurred_at - timedelta(hours=1)
    assert before_dispute <= mine[-2].status_at <= mine[-1].status_at <= datetime.now(timezone.utc)
    assert {e.correlation_id for e in mine} == {f.correlation_id}


async def test_payments_partial_then_full_move_to_212_and_stop_nothing_else(tracker, client, tenant_key, publish,
                                                                          flow, eventually, read_topic):
    key = await tenant_key(tracker)
    f = await known_invoice(tracker, client, key, publish, flow, eventually)
    url = f"/v1/invoices/{f.invoice_id}/payments"
    first = {"payment_id": "PAY-1", "amount": "200.00", "paid_on": "2026-11-20", "reference": "VIR 123"}
    partial = await client.post(url, json=first, headers=auth(key))
    assert partial.status_code == 201, partial.text
    assert (partial.json()["open_amount"], partial.json()["fully_paid"], partial.json()["status"]) == \
        ("1000.00", False, "sent")
    again = await client.post(url, json=first, headers=auth(key))
    assert (again.status_code, again.json()["duplicate"], again.json()["event_id"]) == \
        (200, True, partial.json()["event_id"])

    transmitted = {"payment_id": "PAY-2", "amount": "1000.00", "paid_on": "2026-11-25", "status": "transmitted"}
    rest = await client.post(url, json=transmitted, headers=auth(key))
    assert (rest.json()["open_amount"], rest.json()["fully_paid"], rest.json()["status"], rest.json()["code"]) == \
        ("0.00", True, "PAIEMENT_TRANSMIS", 211)
    confirmed = await client.post(url, json={**transmitted, "status": "received"}, headers=auth(key))
    assert (confirmed.status_code, confirmed.json()["status"], confirmed.json()["code"]) == (201, "ENCAISSEE", 212)

    recorded = await read_topic(topics.PAYMENT_EVENTS, until=lambda events: len(events) >= 3)
    assert [(e.payment_id, str(e.open_amount), e.fully_paid) for e in recorded] == [
        ("PAY-1", "1000.00", False), ("PAY-2", "0.00", True), ("PAY-2", "0.00", True)]
    assert all(isinstance(e, PaymentRecorded) and e.currency == "EUR" and e.source == "api" for e in recorded)
    assert recorded[0].reference == "VIR 123"
    assert [e.status for e in recorded] == ["received", "transmitted", "received"]

    # A recipient action that makes no sense now is journaled as an anomaly and not applied.
    refused = await client.post(f"/v1/invoices/{f.invoice_id}/events", headers=auth(key),
                                json={"kind": "refused", "reason": "changed our mind"})
    assert refused.status_code == 202
    body = refused.json()
    assert (body["applied"], body["status"], body["anomaly"]["from_status"], body["anomaly"]["to_status"]) == \
        (False, "ENCAISSEE", "ENCAISSEE", "REFUSEE")
    journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey", headers=auth(key))).json()
    assert journey["status"] == "ENCAISSEE"
    [anomaly] = [e for e in journey["events"] if e["kind"] == "anomaly"]
    assert anomaly["detail"]["fact_event_id"] == body["event_id"] and anomaly["detail"]["fact_kind"] == "refused"
    assert journey["events"][-1]["kind"] == "anomaly", "shown right after the fact it judged"


async def test_bad_payments_and_events_change_nothing(tracker, client, tenant_key, publish, flow, eventually):
    key = await tenant_key(tracker)
    other_key = await tenant_key(tracker, tenant_id="initech", tenant_name="Initech")
    f = await known_invoice(tracker, client, key, publish, flow, eventually)
    url = f"/v1/invoices/{f.invoice_id}/payments"
    ok = {"payment_id": "P-1", "amount": "100.00", "paid_on": "2026-11-20"}
    assert (await client.post(url, json=ok, headers=auth(key))).status_code == 201
    async with tracker.ctx.sessions() as session:
        outbox_before = (await session.execute(select(func.count()).select_from(outbox_table))).scalar_one()
    journal_before = await journal_count(tracker, f.invoice_id)

    cases = [
        (url, {**ok, "payment_id": "P-2", "amount": "1100.01"}, 422, "/amount"),
        (url, {**ok, "payment_id": "P-2", "currency": "USD"}, 422, "/currency"),
        (url, {**ok, "payment_id": "P-2", "amount": "-5"}, 422, "/amount"),
        (url, {**ok, "payment_id": "P-2", "paid_on": "yesterday"}, 422, "/paid_on"),
        (url, {**ok, "amount": "99.00"}, 409, None),  # payment id reused with another body
        (f"/v1/invoices/{f.invoice_id}/events", {"kind": "disputed"}, 422, "/reason"),
        (f"/v1/invoices/{f.invoice_id}/events", {"kind": "promise_to_pay"}, 422, "/promised_on"),
        (f"/v1/invoices/{f.invoice_id}/events", {"kind": "approved", "promised_on": "2026-12-01"}, 422, "/promised_on"),
        (f"/v1/invoices/{f.invoice_id}/events", {"kind": "paid"}, 422, "/kind"),
        (f"/v1/invoices/{uuid.uuid4()}/events", {"kind": "approved"}, 404, None),
    ]
    for path, body, status, pointer in cases:
        response = await client.post(path, json=body, headers=auth(key))
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        if pointer:
            assert response.json()["errors"][0]["pointer"] == pointer, body
    assert (await client.post(url, json={**ok, "payment_id": "P-9"}, headers=auth(other_key))).status_code == 404

    async with tracker.ctx.sessions() as session:
        outbox_after = (await session.execute(select(func.count()).select_from(outbox_table))).scalar_one()
        payments = (await session.execute(select(Payment.payment_id).where(Payment.invoice_id == f.invoice_id))).all()
    assert outbox_after <= outbox_before, "nothing published"
    assert [p.payment_id for p in payments] == ["P-1"]
    assert await journal_count(tracker, f.invoice_id) == journal_before


async def test_a_promise_to_pay_is_published_and_changes_no_status(tracker, client, tenant_key, publish, flow,
                                                                  eventually, read_topic):
    key = await tenant_key(tracker)
    f = await known_invoice(tracker, client, key, publish, flow, eventually)
    promised = await client.post(f"/v1/invoices/{f.invoice_id}/events", headers=auth(key),
                                 json={"kind": "promise_to_pay", "promised_on": "2026-12-15", "amount": "1200.00"})
    assert (promised.status_code, promised.json()["applied"], promised.json()["status"]) == (202, True, "sent")
    [event] = [e for e in await read_topic(topics.PAYMENT_EVENTS, until=lambda events: len(events) >= 1)]
    assert isinstance(event, PaymentPromised)
    assert (str(event.promised_on), str(event.amount), event.correlation_id) == \
        ("2026-12-15", "1200.00", f.correlation_id)

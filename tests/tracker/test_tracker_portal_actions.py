"""The portal's requests (portal.actions) reach the tracker as events: a recipient's answer is a
recipient action like the API's (lifecycle, promise, anomaly rules; a redelivery is a no-op), and a
console user's incident resolution resolves the incident."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from parcours_contracts import (
    Attachment,
    IncidentResolutionRequested,
    PaymentPromised,
    RecipientActionRequested,
    topics,
)
from parcours_tracker.store.models import JournalEntry


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def answer(f, kind: str, **fields) -> RecipientActionRequested:
    return RecipientActionRequested(tenant_id=f.tenant_id, invoice_id=f.invoice_id, correlation_id=f.correlation_id,
                                    kind=kind, actor="ap@globex.example", **fields)


async def test_portal_answers_are_recipient_actions(tracker, client, tenant_key, publish, flow, eventually,
                                                    read_topic):
    key = await tenant_key(tracker)
    f = flow()
    attachment = Attachment(filename="bl.pdf", content_type="application/pdf", size=10, sha256="a" * 64)
    dispute = answer(f, "disputed", reason="8 delivered, 10 invoiced", attachment=attachment)
    await publish(f.received(0), f.dispatch_requested(1), f.dispatched(2), dispute, dispute,
                  answer(f, "refused"))  # twice: a redelivery; refused without a reason: ignored

    async def status():
        journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey", headers=auth(key))).json()
        return journey if journey.get("status") == "EN_LITIGE" else None
    journey = await eventually(status, what="dispute applied")
    [entry] = [e for e in journey["events"] if e["kind"] == "disputed"]
    assert entry["event_id"] == str(dispute.event_id)
    assert entry["detail"] == {"reason": "8 delivered, 10 invoiced", "actor": "ap@globex.example",
                               "attachment": attachment.model_dump(mode="json"), "source": "portal"}

    promise = answer(f, "promise_to_pay", promised_on=date(2027, 1, 15))
    await publish(promise)
    promised = await read_topic(topics.PAYMENT_EVENTS, lambda events: events)
    assert [(type(e), e.promised_on, e.source) for e in promised] == [(PaymentPromised, date(2027, 1, 15), "portal")]
    async with tracker.ctx.sessions() as session:
        kinds = list((await session.execute(select(JournalEntry.kind).where(
            JournalEntry.invoice_id == f.invoice_id, JournalEntry.kind.in_(("disputed", "refused")))
        )).scalars())
    assert kinds == ["disputed"]


async def test_console_resolution_requests_resolve_the_incident(tracker, client, tenant_key, publish, flow,
                                                                eventually):
    key = await tenant_key(tracker)
    f = flow()
    await publish(f.received(0), f.dispatch_requested(1), f.failed(2))

    async def opened():
        items = (await client.get("/v1/incidents", headers=auth(key))).json()["items"]
        return items[0] if items else None
    incident = await eventually(opened, what="incident opened")
    await publish(IncidentResolutionRequested(tenant_id=f.tenant_id, invoice_id=f.invoice_id,
                                              correlation_id=f.correlation_id, incident_id=incident["incident_id"],
                                              resolution="New address entered", actor="cm@acme.example"))

    async def resolved():
        items = (await client.get("/v1/incidents", headers=auth(key), params={"status": "resolved"})).json()["items"]
        return items[0] if items else None
    done = await eventually(resolved, what="incident resolved")
    assert done["resolution"] == "New address entered (cm@acme.example)"

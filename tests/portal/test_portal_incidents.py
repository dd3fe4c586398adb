"""Incident actions from the console beyond resolve: the customer was called, send the invoice
again, send it on another channel. Each becomes events on portal.actions that the tracker (settle
the incident) and the router (deliver again) apply; bad answers are 422 with field pointers."""

from __future__ import annotations

from parcours_contracts import IncidentResolutionRequested, RedeliveryRequested, topics

from .test_portal_console import form_token


async def test_called_resend_and_switch_channel(portal, signed_in, journey, publish, page_shows, read_topic):
    flow = journey()
    called, switched = flow.incident(), flow.incident()
    await publish(*flow.delivered(), called, switched)
    manager = await signed_in("cm@acme.example")
    page = await page_shows(manager, "/console/incidents", str(called.incident_id), str(switched.incident_id))
    token = form_token(page.text)
    assert 'name="action"' in page.text and '<option value="email_attachment">' in page.text

    json = {"Accept": "application/json"}
    bad = await manager.post(f"/console/incidents/{switched.incident_id}/actions", headers=json,
                             data={"action": "switch_channel", "channel": "carrier_pigeon", "form_token": token})
    assert bad.status_code == 422 and [e["pointer"] for e in bad.json()["errors"]] == ["/channel"]
    unknown = await manager.post(f"/console/incidents/{switched.incident_id}/actions", headers=json,
                                 data={"action": "shrug", "form_token": token})
    assert unknown.status_code == 422 and [e["pointer"] for e in unknown.json()["errors"]] == ["/action"]
    viewer = await signed_in("viewer@acme.example", role="viewer")
    refused = await viewer.post(f"/console/incidents/{called.incident_id}/actions",
                                data={"action": "called", "form_token": form_token((await viewer.get("/console")).text)})
    assert refused.status_code == 403

    done = await manager.post(f"/console/incidents/{called.incident_id}/actions",
                              data={"action": "called", "note": "they had it in spam", "form_token": token})
    assert done.status_code == 303
    done = await manager.post(f"/console/incidents/{switched.incident_id}/actions",
                              data={"action": "switch_channel", "channel": "email_attachment", "form_token": token})
    assert done.status_code == 303
    again = await manager.post(f"/console/incidents/{switched.incident_id}/actions",
                               data={"action": "resend", "form_token": token})
    assert again.status_code == 303  # already requested: nothing more is published

    actions = await read_topic(topics.PORTAL_ACTIONS, lambda events: len(events) >= 3)
    mine = [e for e in actions if e.invoice_id == flow.invoice_id]
    assert [(type(e), e.incident_id) for e in mine] == [
        (IncidentResolutionRequested, called.incident_id), (RedeliveryRequested, switched.incident_id),
        (IncidentResolutionRequested, switched.incident_id)]
    assert (mine[0].action, mine[0].resolution, mine[0].actor) == ("called", "customer called — they had it in spam",
                                                                    "cm@acme.example")
    assert (mine[1].channel, mine[1].actor, mine[1].correlation_id) == ("email_attachment", "cm@acme.example",
                                                                        flow.correlation_id)
    assert (mine[2].action, mine[2].resolution) == ("switch_channel", "invoice sent again on email_attachment")

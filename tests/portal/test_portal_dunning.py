"""The console's dunning pages on the real dunning service, reached with its console token for the
session's tenant: the agenda per day, an invoice's plan with pause/resume, the strategy editor with
its simulation preview (of a saved version, or of the steps being edited); roles, tenant isolation
and field errors."""

from __future__ import annotations

import json
from datetime import date, timedelta

import httpx
import pytest

from .test_portal_console import form_token

TOKEN = "console-token-for-tests"
STEPS = [{"name": "friendly", "anchor": "due_date", "offset_days": 3, "days": "calendar",
          "conditions": [{"kind": "unpaid"}], "action": {"kind": "reminder", "template": "reminder_gentle"}},
         {"name": "call", "anchor": "due_date", "offset_days": 15, "days": "calendar",
          "conditions": [{"kind": "unpaid"}], "action": {"kind": "task", "task": "call"}}]


@pytest.fixture
async def dunning(run_service):
    return await run_service("dunning", console_token=TOKEN)


@pytest.fixture
async def portal(run_service, dunning):
    return await run_service("portal", dunning_url=dunning.url, dunning_console_token=TOKEN)


async def test_agenda_plan_and_pause_resume(portal, dunning, signed_in, journey, publish, page_shows, eventually):
    flow = journey(number="F-AGENDA", due=date.today() + timedelta(days=20))
    await publish(flow.received(), flow.requested(), flow.dispatched(), flow.clicked())
    manager = await signed_in("cm@acme.example")
    plan = f"/console/invoices/{flow.invoice_id}/dunning"

    async def planned():  # dunning planned it once it knew of the dispatch and the click (three topics)
        response = await manager.get(plan)
        return response if 'id="plan-status">active' in response.text and "data-step=" in response.text else None
    page = await eventually(planned, timeout=45, what="dunning's plan of the invoice")
    assert "Suspendre les relances" in page.text

    agenda = await page_shows(manager, f"/console/agenda?start={date.today()}&days=92", "F-AGENDA")
    days = [d for d in agenda.text.split('data-day="')[1:]]
    assert days and all(d[:10] >= date.today().isoformat() for d in days)

    viewer = await signed_in("viewer@acme.example", role="viewer")
    viewer_page = await viewer.get(plan)
    assert viewer_page.status_code == 200 and "Suspendre les relances" not in viewer_page.text
    refused = await viewer.post(f"{plan}/pause", data={"form_token": form_token(viewer_page.text)})
    assert refused.status_code == 403

    token = form_token(page.text)
    paused = await manager.post(f"{plan}/pause", data={"reason": "customer on holiday", "form_token": token})
    assert paused.status_code == 303
    page = await manager.get(plan)
    assert 'id="plan-status">paused' in page.text and "Reprendre les relances" in page.text
    twice = await manager.post(f"{plan}/pause", data={"form_token": token})
    assert twice.status_code == 409 and "already paused" in twice.text
    resumed = await manager.post(f"{plan}/resume", data={"form_token": token})
    assert resumed.status_code == 303
    assert 'id="plan-status">active' in (await manager.get(plan)).text

    globex = await signed_in("cm@globex.example", tenant_id="globex")
    assert (await globex.get(plan)).status_code == 404
    async with httpx.AsyncClient(base_url=dunning.url) as http:
        forged = await http.get(f"/v1/invoices/{flow.invoice_id}/reminders",
                                headers={"Authorization": "Bearer not-the-token", "X-Parcours-Tenant": "acme"})
        assert forged.status_code == 401
        acting = await http.get(f"/v1/invoices/{flow.invoice_id}/reminders",
                                headers={"Authorization": f"Bearer {TOKEN}", "X-Parcours-Tenant": "globex"})
        assert acting.status_code == 404  # the token acts for the tenant it names, and sees only that tenant


async def test_strategy_editor_with_simulation_preview(portal, dunning, signed_in):
    manager = await signed_in("cm@acme.example")
    listing = await manager.get("/console/strategies")
    assert listing.status_code == 200 and ">default<" in listing.text
    token = form_token(listing.text)
    as_json = {"Accept": "application/json"}

    not_json = await manager.post("/console/strategies", headers=as_json, data={
        "new_id": "gentle", "name": "Gentle", "steps": "[{oops", "form_token": token})
    assert not_json.status_code == 422 and [e["pointer"] for e in not_json.json()["errors"]] == ["/steps"]
    wrong = [dict(STEPS[0], anchor="tomorrow")]
    refused = await manager.post("/console/strategies", data={
        "new_id": "gentle", "name": "Gentle", "steps": json.dumps(wrong), "form_token": token})
    assert refused.status_code == 422 and "/steps/0/anchor" in refused.text and 'aria-invalid="true"' in refused.text

    made = await manager.post("/console/strategies", data={
        "new_id": "gentle", "name": "Gentle", "steps": json.dumps(STEPS), "form_token": token})
    assert made.status_code == 303 and made.headers["location"] == "/console/strategies/gentle"
    preview = await manager.get("/console/strategies/gentle",
                                params={"issue_date": "2026-01-05", "due_date": "2026-02-04", "amount": "500"})
    assert preview.status_code == 200 and "Stratégie gentle (version 1)" in preview.text
    assert 'data-step="friendly"' in preview.text and 'data-step="call"' in preview.text
    assert "2026-02-09 07:00 UTC" in preview.text  # due date + 3 days, a Saturday: Monday, 8:00 in Paris

    sample = {"issue_date": "2026-01-05", "due_date": "2026-02-04", "amount": "500", "form_token": token}
    draft = await manager.post("/console/strategies/gentle/preview", data={
        "name": "Gentle, no call", "steps": json.dumps(STEPS[:1]), **sample})
    assert draft.status_code == 200 and 'id="draft-notice"' in draft.text
    assert 'data-step="friendly"' in draft.text and 'data-step="call"' not in draft.text
    assert "Stratégie gentle (version 1)" in draft.text and "Gentle, no call" in draft.text  # nothing saved
    bad_draft = await manager.post("/console/strategies/gentle/preview", data={
        "name": "Gentle", "steps": json.dumps(wrong), **sample})
    assert bad_draft.status_code == 422 and "/draft/steps/0/anchor" in bad_draft.text

    again = await manager.post("/console/strategies/gentle/versions", data={
        "name": "Gentle, no call", "steps": json.dumps(STEPS[:1]), "form_token": token})
    assert again.status_code == 303
    second = await manager.get("/console/strategies/gentle")
    assert "version 2" in second.text and 'data-step="call"' not in second.text

    # A strategy's milestones (not edited by the console) carry over to the version it saves.
    milestone = {"name": "approval", "expect": [205], "within_days": 15, "action": {"kind": "task", "task": "call"}}
    async with httpx.AsyncClient(base_url=dunning.url, headers={"Authorization": f"Bearer {TOKEN}",
                                                               "X-Parcours-Tenant": "acme"}) as http:
        made = await http.post("/v1/strategies", json={"id": "jalons", "name": "Jalons", "steps": STEPS,
                                                       "milestones": [milestone]})
        assert made.status_code == 201
        saved = await manager.post("/console/strategies/jalons/versions", data={
            "name": "Jalons, one step", "steps": json.dumps(STEPS[:1]), "form_token": token})
        assert saved.status_code == 303
        latest = (await http.get("/v1/strategies/jalons")).json()
    assert latest["version"] == 2 and [m["name"] for m in latest["milestones"]] == ["approval"]

    viewer = await signed_in("viewer@acme.example", role="viewer")
    read_only = await viewer.get("/console/strategies/gentle")
    assert read_only.status_code == 200 and "Enregistrer une nouvelle version" not in read_only.text
    globex = await signed_in("cm@globex.example", tenant_id="globex")
    assert (await globex.get("/console/strategies/gentle")).status_code == 404

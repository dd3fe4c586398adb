"""Simulating a draft (the strategy editor's preview): steps not saved yet give their dated plan,
nothing is stored, and a draft that does not validate is 422 with pointers into it."""

from __future__ import annotations

STEPS = [{"name": "gentle", "anchor": "due_date", "offset_days": 2, "conditions": [{"kind": "unpaid"}],
          "action": {"kind": "reminder", "template": "reminder"}},
         {"name": "ring", "anchor": "due_date", "offset_days": 9, "action": {"kind": "task", "task": "call"}}]
INVOICE = {"issue_date": "2026-12-01", "due_date": "2026-12-31", "amount": "1200.00"}


async def test_a_draft_is_simulated_without_being_stored(run_service, client_for):
    host = await run_service("dunning")
    acme = await client_for(host)
    draft = await acme.post("/v1/strategies/not-yet/simulate",
                            json={"invoice": INVOICE, "draft": {"name": "Not yet", "steps": STEPS}})
    assert draft.status_code == 200, draft.text
    plan = draft.json()
    assert (plan["strategy"], plan["version"]) == ("not-yet", 0)
    assert [(s["step"], s["outcome"], s["at"][:10]) for s in plan["steps"]] == [
        ("gentle", "reminder", "2027-01-04"),  # 2 Jan 2027 is a Saturday: the next business morning
        ("ring", "task", "2027-01-11")]        # 9 Jan is a Saturday too
    assert (await acme.get("/v1/strategies/not-yet")).status_code == 404

    wrong = await acme.post("/v1/strategies/not-yet/simulate", json={
        "invoice": INVOICE, "draft": {"name": "Wrong", "steps": [dict(STEPS[0], anchor="tomorrow")]}})
    assert wrong.status_code == 422
    assert "/draft/steps/0/anchor" in {e["pointer"] for e in wrong.json()["errors"]}

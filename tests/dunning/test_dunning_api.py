"""Strategies over HTTP: CRUD with versions, assignment precedence (invoice > customer > group
> default) with the version fixed at planning, operator holds, and the simulator."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

from parcours_runtime.clock import SettableClock

UTC = timezone.utc


def strategy(id_: str | None, name: str, template: str = "t", offset: int = 1) -> dict:
    body = {"name": name, "steps": [{"name": "only", "anchor": "due_date", "offset_days": offset,
                                     "action": {"kind": "reminder", "template": template}}]}
    return {"id": id_, **body} if id_ else body


async def started(run_service, client_for):
    host = await run_service("dunning", time_travel=True, tick_seconds=3600)
    host.ctx.extras["clock"] = SettableClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    return host, await client_for(host, "acme"), await client_for(host, "globex")


async def test_strategy_crud_and_versions(run_service, client_for):
    host, acme, globex = await started(run_service, client_for)
    created = await acme.post("/v1/strategies", json=strategy("gentle", "Gentle"))
    assert created.status_code == 201 and (created.json()["id"], created.json()["version"]) == ("gentle", 1)
    assert (await acme.post("/v1/strategies", json=strategy("gentle", "Again"))).status_code == 409
    assert (await acme.post("/v1/strategies", json=strategy("default", "Mine"))).status_code == 409
    assert (await acme.post("/v1/strategies/default/versions", json=strategy(None, "Mine"))).status_code == 409

    bad = await acme.post("/v1/strategies", json={"id": "bad", "name": "x", "steps": [
        {"name": "s", "anchor": "yesterday", "action": {"kind": "reminder", "template": "t"}}]})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["pointer"] == "/steps/0/anchor"
    duplicate = strategy("dup", "Dup")
    duplicate["steps"] *= 2
    assert (await acme.post("/v1/strategies", json=duplicate)).status_code == 422
    assert (await acme.get("/v1/strategies/bad")).status_code == 404, "bad input changes nothing"

    v2 = await acme.post("/v1/strategies/gentle/versions", json=strategy(None, "Gentle, later", offset=5))
    assert v2.status_code == 201 and v2.json()["version"] == 2 and v2.json()["versions"] == [1, 2]
    assert (await acme.post("/v1/strategies/nope/versions", json=strategy(None, "x"))).status_code == 404
    listed = (await acme.get("/v1/strategies")).json()
    assert [(s["id"], s["version"]) for s in listed] == [("default", 1), ("gentle", 2)]
    assert [s["name"] for s in listed[0]["steps"]] == ["pre_due", "preventive", "curative_1", "curative_2", "formal_notice"]
    got = (await acme.get("/v1/strategies/gentle")).json()
    assert (got["name"], got["steps"][0]["offset_days"]) == ("Gentle, later", 5)
    first = (await acme.get("/v1/strategies/gentle/versions/1")).json()
    assert (first["name"], first["steps"][0]["offset_days"]) == ("Gentle", 1)
    assert (await acme.get("/v1/strategies/gentle/versions/3")).status_code == 404
    assert (await globex.get("/v1/strategies/gentle")).status_code == 404, "another tenant's strategy"
    assert [s["id"] for s in (await globex.get("/v1/strategies")).json()] == ["default"]


async def test_a_strategys_milestones_are_kept_and_shown(run_service, client_for):
    host, acme, _ = await started(run_service, client_for)
    milestone = {"name": "approval", "expect": [205], "anchor": "receipt", "within_days": 15,
                 "action": {"kind": "task", "task": "call"}}
    created = await acme.post("/v1/strategies", json=strategy("jalons", "With a milestone") | {"milestones": [milestone]})
    assert created.status_code == 201
    assert [m["name"] for m in created.json()["milestones"]] == ["approval"], "created with its milestone"
    got = (await acme.get("/v1/strategies/jalons")).json()
    assert got["milestones"][0]["expect"] == [205] and got["milestones"][0]["within_days"] == 15


async def test_assignment_precedence_and_version_fixed_at_planning(
        run_service, publish, build, client_for, wait_for_plan):
    host, acme, globex = await started(run_service, client_for)
    for name in ("group-s", "customer-s", "invoice-s"):
        assert (await acme.post("/v1/strategies", json=strategy(name, name))).status_code == 201
    await publish(build.customer_changed(ref="ALPHA", group="smb"), build.customer_changed(ref="BETA", group="smb"),
                  build.customer_changed(ref="GONE", group="smb", deleted=True))
    assert (await acme.put("/v1/assignments/groups/smb", json={"strategy_id": "group-s"})).status_code == 200
    assert (await acme.put("/v1/assignments/customers/BETA", json={"strategy_id": "customer-s"})).status_code == 200
    own = uuid.uuid4()
    assert (await acme.put(f"/v1/assignments/invoices/{own}", json={"strategy_id": "invoice-s"})).status_code == 200
    unknown = await acme.put("/v1/assignments/groups/smb", json={"strategy_id": "nope"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["pointer"] == "/strategy_id"
    assert (await globex.put("/v1/assignments/groups/smb", json={"strategy_id": "group-s"})).status_code == 422

    async def customer_known():
        from sqlalchemy import func, select

        from parcours_dunning.store.strategies import Customer
        async with host.ctx.sessions() as session:
            return (await session.execute(select(func.count()).select_from(Customer))).scalar_one() == 3
    await build.eventually(customer_known)

    cases = {"ALPHA": "group-s", "BETA": "customer-s", "GAMMA": "default", "GONE": "default"}
    invoices = {ref: build.invoice_received(issue=date(2026, 12, 1), due=date(2026, 12, 31), customer_ref=ref)
                for ref in cases}
    beta_own = build.invoice_received(issue=date(2026, 12, 1), due=date(2026, 12, 31), customer_ref="BETA",
                                      invoice_id=own)
    await publish(*invoices.values(), beta_own)
    for ref, expected in cases.items():
        plan = await wait_for_plan(acme, invoices[ref].invoice_id)
        assert (plan["strategy"], plan["strategy_version"]) == (expected, 1), ref
    assert (await wait_for_plan(acme, own))["strategy"] == "invoice-s", "invoice > customer > group > default"
    late = await acme.put(f"/v1/assignments/invoices/{own}", json={"strategy_id": "group-s"})
    assert late.status_code == 409

    # a new version applies to invoices planned after it; the others keep theirs
    await acme.post("/v1/strategies/group-s/versions", json=strategy(None, "group v2", offset=9))
    newer = build.invoice_received(issue=date(2026, 12, 1), due=date(2026, 12, 31), customer_ref="ALPHA")
    await publish(newer)
    plan = await wait_for_plan(acme, newer.invoice_id)
    assert (plan["strategy"], plan["strategy_version"]) == ("group-s", 2)
    assert datetime.fromisoformat(plan["steps"][0]["fire_at"]) == build.paris_8(date(2027, 1, 11))  # 9 Jan is a Saturday
    old = await wait_for_plan(acme, invoices["ALPHA"].invoice_id)
    assert old["strategy_version"] == 1
    assert datetime.fromisoformat(old["steps"][0]["fire_at"]) == build.paris_8(date(2027, 1, 4))  # due + 1 = New Year's Day: Monday


async def test_operator_pause_resume_and_exclude(run_service, publish, build, client_for, wait_for_plan):
    host, acme, globex = await started(run_service, client_for)
    invoice = build.invoice_received(issue=date(2026, 12, 1), due=date(2026, 12, 31))
    await publish(invoice, build.invoice_dispatched(invoice, at=datetime(2026, 12, 1, 10, tzinfo=UTC)))
    await wait_for_plan(acme, invoice.invoice_id, lambda p: p["dispatched_at"] is not None)
    path = f"/v1/invoices/{invoice.invoice_id}"

    assert (await globex.post(f"{path}/pause")).status_code == 404
    assert (await acme.post(f"{path}/resume")).status_code == 409
    paused = await acme.post(f"{path}/pause", json={"reason": "customer on the phone"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert {s["reason"] for s in paused.json()["steps"]} == {"paused by an operator: customer on the phone"}
    assert (await acme.post(f"{path}/pause")).status_code == 409
    assert (await acme.post(f"{path}/pause", json={"reason": 3, "x": 1})).status_code == 422

    host.ctx.extras["clock"].set(datetime(2026, 12, 29, 12, tzinfo=UTC))
    assert (await host.ctx.extras["scheduler"].run_once()).emitted == []
    resumed = await acme.post(f"{path}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    fire_at = {s["step"]: datetime.fromisoformat(s["fire_at"]) for s in resumed.json()["steps"]}
    assert fire_at["pre_due"] == fire_at["preventive"] == datetime(2026, 12, 29, 12, tzinfo=UTC)
    assert fire_at["curative_1"] == build.paris_8(date(2027, 1, 4))

    excluded = await acme.post(f"{path}/exclude", json={"reason": "credit note issued"})
    assert excluded.json()["status"] == "stopped: excluded from dunning: credit note issued"
    assert {s["state"] for s in excluded.json()["steps"]} == {"skipped"}
    assert (await acme.post(f"{path}/resume")).status_code == 409
    kinds = [a["kind"] for a in excluded.json()["audit"]]
    assert kinds[0] == "planned"  # then "scheduled" when the dispatch came after the invoice (topics race)
    assert kinds[-6:] == ["operator pause", "paused", "operator resume", "resumed", "operator exclude", "stopped"]


async def test_simulate_returns_the_dated_plan_with_reasons(run_service, publish, build, client_for, wait_for_plan):
    host, acme, globex = await started(run_service, client_for)
    body = {"invoice": {"issue_date": "2026-12-01", "due_date": "2026-12-31", "amount": "1200.00",
                        "dispatched_at": "2026-12-01T10:00:00Z"},
            "events": [{"at": "2027-01-06T09:00:00Z", "kind": "disputed"},
                       {"at": "2027-01-13T09:00:00Z", "kind": "approved"},
                       {"at": "2027-01-14T09:00:00Z", "kind": "promise", "promised_on": "2027-01-20"}]}
    simulated = await acme.post("/v1/strategies/default/simulate", json=body)
    assert simulated.status_code == 200, simulated.text
    steps = [(s["step"], s["outcome"], s["at"] and datetime.fromisoformat(s["at"])) for s in simulated.json()["steps"]]
    assert steps == [
        ("pre_due", "reminder", build.paris_8(date(2026, 12, 3))),
        ("preventive", "reminder", build.paris_8(date(2026, 12, 28))),
        ("curative_1", "reminder", build.paris_8(date(2027, 1, 4))),
        ("curative_2", "reminder", datetime(2027, 1, 13, 9, tzinfo=UTC)),     # due 11 Jan, disputed: at approval
        ("formal_notice", "task", build.paris_8(date(2027, 1, 25))),           # 20 Jan promised + 3 days → Monday
    ]
    curative = simulated.json()["steps"][2]
    assert curative["penalties"] == {"indemnity": "40.00", "interest": "1.60", "rate": "12.15", "days_late": 4}
    assert "late-payment penalties" in curative["reason"]

    paid = await acme.post("/v1/strategies/default/simulate", json={**body, "events": [
        {"at": "2026-12-02T09:00:00Z", "kind": "viewed"}, {"at": "2027-01-02T09:00:00Z", "kind": "paid"}]})
    outcomes = [(s["step"], s["outcome"], s["reason"]) for s in paid.json()["steps"]]
    assert outcomes[0][:2] == ("pre_due", "skipped") and outcomes[0][2].startswith("receipt established by link.clicked")
    assert outcomes[2:] == [(s, "skipped", "stopped: paid in full") for s in ("curative_1", "curative_2", "formal_notice")]

    assert (await acme.post("/v1/strategies/nope/simulate", json=body)).status_code == 404
    invalid = await acme.post("/v1/strategies/default/simulate", json={"invoice": {**body["invoice"], "due_date": "2026-11-01"}})
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["pointer"] == "/invoice/due_date"
    assert (await acme.post("/v1/strategies/default/simulate", json={"events": []})).status_code == 422
    promise_without_date = {**body, "events": [{"at": "2027-01-14T09:00:00Z", "kind": "promise"}]}
    assert (await acme.post("/v1/strategies/default/simulate", json=promise_without_date)).status_code == 422

    # an invoice dunning knows: its facts so far, plus assumed events
    known = build.invoice_received(issue=date(2026, 12, 1), due=date(2026, 12, 31))
    await publish(known, build.invoice_dispatched(known, at=datetime(2026, 12, 1, 10, tzinfo=UTC)))
    await wait_for_plan(acme, known.invoice_id, lambda p: p["dispatched_at"] is not None)
    by_id = await acme.post("/v1/strategies/default/simulate", json={"invoice_id": str(known.invoice_id), "events": [
        {"at": "2026-12-02T09:00:00Z", "kind": "refused"}]})
    assert {(s["outcome"], s["reason"]) for s in by_id.json()["steps"]} == {("skipped", "stopped: refused (210 REFUSEE)")}
    assert (await globex.post("/v1/strategies/default/simulate", json={"invoice_id": str(known.invoice_id)})).status_code == 404

"""One invoice's whole journey through the five services, over the real broker, databases
and SMTP: ingest → router → channels → tracker → dunning, reminders included."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date, datetime, time as dtime, timedelta, timezone

import httpx

from parcours_devstack import demo




def signed_ack(body: bytes, secret: str = "dev-ack-secret") -> dict[str, str]:
    import hashlib
    import hmac

    ts = str(int(time.time()))
    signature = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Parcours-Timestamp": ts, "X-Parcours-Signature": f"sha256={signature}", "Content-Type": "application/json"}


async def journey(client: httpx.AsyncClient, stack, invoice_id: str) -> dict:
    response = await client.get(f"{stack.url('tracker')}/v1/invoices/{invoice_id}/journey", headers=stack.auth)
    return response.json() if response.status_code == 200 else {}


async def test_invoice_travels_the_whole_platform(stack, eventually):
    customer = {"name": "Client Démo SAS", "channels": ["email_link"],
                "contacts": [{"email": "compta@client.example", "name": "Comptabilité"}]}
    issued = date.today()
    async with httpx.AsyncClient(timeout=30) as client:
        put = await client.put(f"{stack.url('router')}/v1/customers/CUST-1", json=customer, headers=stack.auth)
        assert put.status_code in (200, 201), put.text
        customer_ref = {"ref": "CUST-1", "name": customer["name"]}
        bodies = [demo.invoice_body(f"E2E-{n}", customer_ref, issued=issued, due_in_days=30,
                                    lines=[("Prestation", "2", "500.00", "20")]) for n in ("VIEWED", "SILENT")]
        ids = []
        for body in bodies:
            posted = await client.post(f"{stack.url('ingest')}/v1/invoices", json=body, headers=stack.auth)
            assert posted.status_code == 202, posted.text
            ids.append(posted.json()["invoice_id"])
        viewed_id, silent_id = ids

        # channels: one notification per invoice, with a tracked link through the tracker
        mails = await stack.sink.wait_for(2, timeout=60)
        assert sorted(m["subject"] for m in mails)[0].find("E2E-") >= 0
        viewed_mail = next(stack.sink.message(m["id"]) for m in mails if "E2E-VIEWED" in m["subject"])
        link = re.search(r"(http://127\.0\.0\.1:\d+/l/[A-Za-z0-9_\-\.]+)", viewed_mail["text"]).group(1)

        # tracker: opening the link lands on the invoice page; pressing its button (what a person
        # does, and a mail scanner does not) is the view
        browser = {"User-Agent": "Mozilla/5.0 (e2e)"}
        clicked = await client.get(link, follow_redirects=False, headers=browser)
        assert clicked.status_code == 303
        page = await client.get(link, follow_redirects=True, headers=browser)
        assert page.status_code == 200 and "E2E-VIEWED" in page.text
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
        viewed = await client.post(f"{page.url}/open", data={"nonce": nonce}, headers=browser)
        assert viewed.status_code == 200 and "E2E-VIEWED" in viewed.text

        # a partner acknowledgement, signed
        ack = httpx.Request("POST", "/", json={"tenant_id": "acme", "invoice_id": viewed_id, "ack_id": "ACK-1"}).content
        acked = await client.post(f"{stack.url('tracker')}/v1/acks/edi", content=ack, headers=signed_ack(ack))
        assert acked.status_code == 202, acked.text

        async def viewed_journey():
            j = await journey(client, stack, viewed_id)
            kinds = [e["kind"] for e in j.get("events", [])]
            return j if {"received", "dispatched", "clicked", "acked"} <= set(kinds) else None

        j = await eventually(viewed_journey, timeout=30, what="viewed journey")
        kinds = [e["kind"] for e in j["events"]]
        assert kinds.index("received") < kinds.index("dispatched") < kinds.index("clicked")
        assert j["status"] == "viewed"
        dispatched = next(e for e in j["events"] if e["kind"] == "dispatched")
        assert viewed_mail["message_id"] in str(dispatched["detail"])

        # dunning: the receipt check before the due date reminds only the invoice nobody opened
        async def dunning_knows_receipt():
            r = await client.get(f"{stack.url('dunning')}/v1/invoices/{viewed_id}/reminders", headers=stack.auth)
            return r.status_code == 200
        await eventually(dunning_knows_receipt, timeout=30, what="dunning knows the invoice")
        await asyncio.sleep(1)  # let dunning consume the click and the ack
        admin = {"Authorization": f"Bearer {demo.ADMIN_TOKEN}"}
        due = issued + timedelta(days=30)
        pre_due_moment = datetime.combine(due - timedelta(days=7), dtime(12, 0), tzinfo=timezone.utc)
        assert (await client.put(f"{stack.url('dunning')}/v1/admin/clock", json={"now": pre_due_moment.isoformat()},
                                 headers=admin)).status_code == 200
        assert (await client.post(f"{stack.url('dunning')}/v1/admin/scheduler/run", headers=admin)).status_code == 200

        reminders = await stack.sink.wait_for(3, timeout=60)
        reminder = next(m for m in reminders if m["id"] not in {x["id"] for x in mails})
        assert "E2E-SILENT" in reminder["subject"]

        async def silent_reminded():
            j = await journey(client, stack, silent_id)
            return j if "reminded" in [e["kind"] for e in j.get("events", [])] else None
        await eventually(silent_reminded, timeout=30, what="reminder in the journey")

        plan = (await client.get(f"{stack.url('dunning')}/v1/invoices/{viewed_id}/reminders", headers=stack.auth)).json()
        assert "pre_due" in str(plan) and "skipped" in str(plan)
        assert len(stack.sink.messages()) == 3, "the viewed invoice got no receipt-check reminder"

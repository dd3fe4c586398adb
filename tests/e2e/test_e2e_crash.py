"""kill -9 while invoices flow: every accepted invoice still reaches `dispatched`, and each
recipient gets exactly one email.

"One email" means one Message-ID. SMTP has no two-phase commit: a crash in the instants
between the relay's 250 and our record of it can only be resolved by sending again, and the
channels service then resends the very same message (same Message-ID), which mailbox
providers store once. A second, different message for the same invoice is the failure."""

from __future__ import annotations

import asyncio
import collections
import re
from datetime import date

import httpx

from parcours_devstack import demo

INVOICES = 40


async def test_services_killed_mid_flow_lose_nothing_and_send_nothing_twice(stack):
    async with httpx.AsyncClient(timeout=30) as client:
        customer = {"name": "Crash Test SA", "channels": ["email_link"], "contacts": [{"email": "ap@crash.example"}]}
        assert (await client.put(f"{stack.url('router')}/v1/customers/CRASH", json=customer,
                                 headers=stack.auth)).status_code in (200, 201)
        ref = {"ref": "CRASH", "name": "Crash Test SA"}

        async def post(n: int) -> str:
            body = demo.invoice_body(f"CRASH-{n:03d}", ref, issued=date.today(), due_in_days=30,
                                     lines=[("Ligne", "1", f"{100 + n}.00", "20")])
            response = await client.post(f"{stack.url('ingest')}/v1/invoices", json=body, headers=stack.auth)
            assert response.status_code == 202, response.text
            return response.json()["invoice_id"]

        first = await asyncio.gather(*(post(n) for n in range(INVOICES // 2)))
        await stack.sink.wait_for(3, timeout=60)
        await stack.restart("channels", crash=True)     # mid-send
        rest = await asyncio.gather(*(post(n) for n in range(INVOICES // 2, INVOICES)))
        await stack.restart("router", crash=True)       # mid-routing
        await stack.restart("tracker", crash=True)
        invoice_ids = first + rest

        await stack.sink.wait_for(INVOICES, timeout=120)
        await asyncio.sleep(3)  # anything still in flight would show up as a duplicate now
        message_ids: dict[str, set[str]] = collections.defaultdict(set)
        for mail in stack.sink.messages():
            message_ids[re.search(r"CRASH-\d{3}", mail["subject"]).group(0)].add(mail["message_id"])
        assert len(message_ids) == INVOICES, "every invoice was delivered"
        twice = {number: ids for number, ids in message_ids.items() if len(ids) > 1}
        assert not twice, f"invoices sent as two different messages: {twice}"
        resent = len(stack.sink.messages()) - INVOICES
        print(f"same-Message-ID resends after the crashes: {resent}")

        async def all_dispatched() -> bool:
            for invoice_id in invoice_ids:
                r = await client.get(f"{stack.url('tracker')}/v1/invoices/{invoice_id}/journey", headers=stack.auth)
                if r.status_code != 200 or "dispatched" not in [e["kind"] for e in r.json()["events"]]:
                    return False
            return True

        for _ in range(100):
            if await all_dispatched():
                break
            await asyncio.sleep(0.5)
        assert await all_dispatched(), "the tracker saw every invoice dispatched"

"""Magic-link sign-in against a real SMTP sink: the same answer for any address, a mail with one
single-use link per customer only for addresses the tenant sends invoices to, a button between
the link and the session (mail scanners fetch links), a bounded number of mails per hour."""

from __future__ import annotations

import re

import httpx
import pytest

from parcours_devstack.smtp_sink import SmtpSink


@pytest.fixture
async def sink():
    async with SmtpSink() as running:
        yield running


async def test_magic_link_sign_in(run_service, sink, journey, publish, eventually):
    portal = await run_service("portal", smtp_port=sink.smtp_port, sign_in_per_hour=2,
                               public_url="http://portal.test")
    flow = journey(number="F-MAGIC")
    await publish(*flow.delivered())
    async with httpx.AsyncClient(base_url=portal.url, headers={"Accept": "text/html"}) as http:
        page = await http.get("/portal/sign-in")
        assert '<label for="email">' in page.text

        async def known():
            async with portal.ctx.sessions() as db:
                from parcours_portal.store.signin import customers_of
                return await customers_of(db, flow.recipient)
        assert await eventually(known, what="the recipient learned from the dispatch") == [("acme", "CUST-1", None)]

        stranger = await http.post("/portal/sign-in", data={"email": "nobody@elsewhere.example"})
        asked = await http.post("/portal/sign-in", data={"email": flow.recipient.upper()})
        assert stranger.status_code == asked.status_code == 200
        notice = "Si des factures sont envoyées à cette adresse, un lien de connexion vient d"
        assert notice in stranger.text and notice in asked.text

        [mail] = await sink.wait_for(1, timeout=10)
        received = sink.message(mail["id"])
        assert flow.recipient in str(received["rcpt_tos"]) and "CUST-1" in received["text"]
        text = received["text"]
        token = re.search(r"http://portal\.test/portal/magic/([A-Za-z0-9_\-]+)", text).group(1)

        assert (await http.get(f"/portal/magic/{token}")).status_code == 200  # a scanner's fetch uses nothing
        assert (await http.get(f"/portal/magic/{token}x")).status_code == 404
        signed_in = await http.post(f"/portal/magic/{token}")
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/portal"
        assert "F-MAGIC" in (await http.get("/portal")).text
        assert (await http.post(f"/portal/magic/{token}")).status_code == 404  # single use

        await http.post("/portal/sign-in", data={"email": flow.recipient})  # the second of the hour
        await http.post("/portal/sign-in", data={"email": flow.recipient})  # over the limit: no mail
        await sink.wait_for(2, timeout=10)
        assert len(sink.messages()) == 2

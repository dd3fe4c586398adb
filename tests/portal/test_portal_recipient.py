"""The recipient's portal over HTTP: entered with the mail's tracked link, scoped to that customer,
each answer checked then published as a RecipientActionRequested (bad input changes nothing)."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta

import httpx

from parcours_contracts import RecipientActionRequested, topics
from parcours_runtime.links import issue_link_token

PDF = b"%PDF-1.4\n% delivery note\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def link(flow) -> str:
    return issue_link_token("dev-link-secret", tenant_id=flow.tenant_id, invoice_id=flow.invoice_id,
                            dispatch_id=flow.dispatch_id, recipient=flow.recipient)


async def test_recipient_answers_from_the_tracked_link(portal, journey, publish, eventually, read_topic, signed_in,
                                                      page_shows):
    mine, sibling, theirs = journey(number="F-MINE"), journey(number="F-SIBLING"), journey(number="F-OTHER",
                                                                                            customer_ref="CUST-2")
    await publish(*mine.delivered(), *sibling.delivered(), *theirs.delivered())
    console = await signed_in("cm@acme.example")
    await page_shows(console, "/console", "F-MINE", "F-SIBLING", "F-OTHER")  # all three in the read model
    async with httpx.AsyncClient(base_url=portal.url, headers={"Accept": "text/html"}) as http:
        assert (await http.get(f"/p/{link(mine)[:-3]}abc")).status_code == 404
        assert (await http.get("/portal")).headers["location"] == "/portal/sign-in"

        async def entered():
            response = await http.get(f"/p/{link(mine)}")
            return response if response.status_code == 303 else None
        entry = await eventually(entered, what="the portal knows the invoice")
        assert entry.headers["location"] == f"/portal/invoices/{mine.invoice_id}"

        async def both_known():
            home = await http.get("/portal")
            return home.text if "F-MINE" in home.text and "F-SIBLING" in home.text else None
        assert "F-OTHER" not in await eventually(both_known, what="the customer's two invoices listed")
        assert (await http.get(f"/portal/invoices/{theirs.invoice_id}")).status_code == 404
        assert (await http.get(f"/portal/invoices/{theirs.invoice_id}")).status_code == 404

        page = await http.get(f"/portal/invoices/{mine.invoice_id}")
        # No document-reader token configured: no PDF offered, none served.
        assert "document.pdf" not in page.text
        assert (await http.get(f"/portal/invoices/{mine.invoice_id}/document.pdf")).status_code == 404
        token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        for field in ("reason", "attachment", "promised_on"):
            assert f'<label for="{field}">' in page.text and f'id="{field}"' in page.text
        answer = f"/portal/invoices/{mine.invoice_id}/answer"

        assert (await http.post(answer, data={"action": "approve"})).status_code == 403  # no form token
        no_reason = await http.post(answer, data={"action": "dispute", "reason": " ", "form_token": token})
        assert no_reason.status_code == 422 and 'aria-invalid="true"' in no_reason.text
        past = await http.post(answer, data={"action": "promise", "form_token": token,
                                             "promised_on": (date.today() - timedelta(days=1)).isoformat()},
                               headers={"Accept": "application/json"})
        assert past.status_code == 422 and past.json()["errors"][0]["pointer"] == "/promised_on"
        script = await http.post(answer, data={"action": "dispute", "reason": "x", "form_token": token},
                                 files={"attachment": ("note.pdf", b"<script>alert(1)</script>", "application/pdf")},
                                 headers={"Accept": "application/json"})
        assert script.status_code == 422 and script.json()["errors"][0]["pointer"] == "/attachment"
        foreign = await http.post(f"/portal/invoices/{theirs.invoice_id}/answer",
                                  data={"action": "approve", "form_token": token})
        assert foreign.status_code == 404

        disputed = await http.post(answer, data={"action": "dispute", "reason": "8 delivered, 10 invoiced",
                                                 "form_token": token},
                                   files={"attachment": ("bon de livraison.pdf", PDF, "application/pdf")})
        assert disputed.status_code == 303
        shown = await http.get(disputed.headers["location"])
        assert "Merci, votre réponse a été transmise." in shown.text and "8 delivered, 10 invoiced" in shown.text

    published = await read_topic(topics.PORTAL_ACTIONS, lambda events: events)
    [event] = published
    assert isinstance(event, RecipientActionRequested)
    assert (event.invoice_id, event.kind, event.reason, event.actor) == (
        mine.invoice_id, "disputed", "8 delivered, 10 invoiced", mine.recipient)
    assert event.attachment.model_dump() == {"filename": "bon de livraison.pdf", "content_type": "application/pdf",
                                             "size": len(PDF), "sha256": hashlib.sha256(PDF).hexdigest()}

    # The credit team sees the answer in the journey and downloads the attachment; another tenant cannot.
    page = (await console.get(f"/console/invoices/{mine.invoice_id}")).text
    assert 'data-kind="action_requested"' in page and "8 delivered, 10 invoiced" in page
    href = re.search(r'href="(/console/attachments/[0-9a-f-]+)"', page).group(1)
    download = await console.get(href)
    assert download.content == PDF and download.headers["content-disposition"].startswith("attachment;")
    outsider = await signed_in("cm@globex.example", tenant_id="globex")
    assert (await outsider.get(href)).status_code == 404

"""The console and the recipient's portal in a real browser (Debian's chromium, headless) against
the six services as processes: sign-in, the journey of a dispatched and viewed invoice with its
evidence, an incident resolved from the queue, dunning's plan and a strategy's simulation, the invoice PDF and
a dispute from the portal pausing dunning.
Accessibility basics on every page: labels, contrast, keyboard order. Screenshots: tests/artifacts/."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import async_playwright, expect

from parcours_devstack import demo

from .browser import check_accessibility, launch, screenshot

PASSWORD = "browser-test-password"
CUSTOMER = {"name": "Client Navigateur SAS", "channels": ["email_link"], "language": "fr",
            "contacts": [{"email": "compta@navigateur.example", "name": "Comptabilité"}]}
PDF = b"%PDF-1.4\n% bon de livraison\n%%EOF\n"


async def post_invoice(client: httpx.AsyncClient, stack, number: str, customer_ref: str) -> str:
    body = demo.invoice_body(number, {"ref": customer_ref, "name": CUSTOMER["name"]},
                             issued=demo.date.today(), due_in_days=30, lines=[("Conseil", "2", "500.00", "20")])
    posted = await client.post(f"{stack.url('ingest')}/v1/invoices", json=body, headers=stack.auth)
    assert posted.status_code == 202, posted.text
    return posted.json()["invoice_id"]


async def tracked_link(stack, number: str) -> str:
    mails = await stack.sink.wait_for(1, timeout=60)
    mail = stack.sink.message(next(m["id"] for m in mails if number in m["subject"]))
    return re.search(r"http://127\.0\.0\.1:\d+/l/([A-Za-z0-9_\-.]+)", mail["text"]).group(1)


async def reload_until(page, url: str, text: str, eventually) -> None:
    async def shown():
        await page.goto(url)
        return text in await page.content()
    await eventually(shown, timeout=30, interval=0.5, what=f"{url} showing {text!r}")


async def test_console_journey_and_incident_in_a_browser(stack, eventually):
    portal = stack.url("portal")
    async with httpx.AsyncClient(timeout=30) as client:
        await demo.ensure_console_user(portal, PASSWORD, tenant_id="acme", email="cm@acme.example",
                                       role="credit_manager", name="Camille Crédit")
        assert (await client.put(f"{stack.url('router')}/v1/customers/CUST-WEB", json=CUSTOMER,
                                 headers=stack.auth)).status_code in (200, 201)
        invoice_id = await post_invoice(client, stack, "WEB-VIEWED", "CUST-WEB")
        await post_invoice(client, stack, "WEB-ORPHAN", "CUST-NOWHERE")  # unroutable: an incident
        # The recipient opens the mail's link and presses the tracker's button: a person's view.
        token = await tracked_link(stack, "WEB-VIEWED")
        browser_ua = {"User-Agent": "Mozilla/5.0 (browser test)"}
        page = await client.get(f"{stack.url('tracker')}/l/{token}", follow_redirects=True, headers=browser_ua)
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
        viewed = await client.post(f"{page.url}/open", data={"nonce": nonce}, headers=browser_ua)
        assert viewed.status_code == 200 and f'href="{portal}/p/{token}"' in viewed.text  # onward to the portal

    async with async_playwright() as playwright:
        browser = await launch(playwright)
        page = await browser.new_page(locale="fr-FR")
        await page.goto(f"{portal}/console")
        assert page.url.endswith("/login?next=/console")
        await check_accessibility(page)
        # Keyboard only: the skip link, then the language, then e-mail, password, button, in that order.
        order = []
        for _ in range(5):
            await page.keyboard.press("Tab")
            order.append(await page.evaluate("document.activeElement.id || document.activeElement.textContent"))
        assert order[2:] == ["email", "password", "Se connecter"], order
        await page.fill("#email", "cm@acme.example")
        await page.fill("#password", PASSWORD)
        await page.keyboard.press("Enter")
        await expect(page.locator("h1")).to_have_text("Factures")
        await expect(page.locator("header")).to_contain_text("Camille Crédit (credit_manager)")

        await reload_until(page, f"{portal}/console/invoices/{invoice_id}", "Consultée par une personne", eventually)
        timeline = page.locator("ol.timeline > li")
        kinds = await timeline.evaluate_all("items => items.map(i => i.dataset.kind)")
        assert kinds.index("received") < kinds.index("dispatched") < kinds.index("clicked")
        await page.locator("li[data-kind=clicked] summary").click()
        await expect(page.locator("li[data-kind=clicked] dl")).to_contain_text("Mozilla/5.0 (browser test)")
        await page.locator("li[data-kind=dispatched] summary").click()
        await expect(page.locator("li[data-kind=dispatched] dl")).to_contain_text("compta@navigateur.example")
        await check_accessibility(page)
        await screenshot(page, "console-journey")

        await reload_until(page, f"{portal}/console/incidents", "unroutable", eventually)
        await check_accessibility(page)
        await page.get_by_label("Résolution").first.fill("Client ajouté à l'annuaire")
        await page.get_by_role("button", name="Résoudre").first.click()
        await expect(page.locator("main")).to_contain_text("Résolution demandée")
        await reload_until(page, f"{portal}/console/incidents?status=resolved", "Client ajouté à l'annuaire",
                           eventually)
        await expect(page.locator("main")).to_contain_text("(cm@acme.example)")
        await screenshot(page, "console-incident-resolved")

        # Dunning's pages, through its console token: the invoice's plan, a strategy's simulation preview.
        await reload_until(page, f"{portal}/console/invoices/{invoice_id}/dunning", "plan-status", eventually)
        await check_accessibility(page)
        await page.goto(f"{portal}/console/strategies/default")
        await expect(page.locator("#simulation tr[data-step]").first).to_be_visible()
        await check_accessibility(page)
        await screenshot(page, "console-strategy-simulation")

        await page.goto(f"{portal}/console?incident=open")
        await expect(page.locator("main")).not_to_contain_text("WEB-ORPHAN")
        await page.select_option("#lang-select", "en")
        await expect(page.locator("h1")).to_have_text("Invoices")
        await check_accessibility(page)
        await screenshot(page, "console-invoices-en")
        await browser.close()


async def test_portal_dispute_pauses_dunning(stack, eventually):
    portal = stack.url("portal")
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.put(f"{stack.url('router')}/v1/customers/CUST-WEB", json=CUSTOMER,
                                 headers=stack.auth)).status_code in (200, 201)
        invoice_id = await post_invoice(client, stack, "WEB-DISPUTED", "CUST-WEB")
        token = await tracked_link(stack, "WEB-DISPUTED")

        async with async_playwright() as playwright:
            browser = await launch(playwright)
            page = await browser.new_page(locale="fr-FR")
            await reload_until(page, f"{portal}/p/{token}", "WEB-DISPUTED", eventually)
            assert page.url.endswith(f"/portal/invoices/{invoice_id}")
            await check_accessibility(page)
            async with page.expect_download() as download:
                await page.get_by_role("link", name="Télécharger le PDF").click()
            pdf = await (await download.value).path()
            assert open(pdf, "rb").read(5) == b"%PDF-"  # ingest's Factur-X, read by claim check
            await page.get_by_label("Motif").fill("8 palettes livrées, 10 facturées")
            await page.get_by_label("Pièce jointe").set_input_files(
                {"name": "bon-de-livraison.pdf", "mimeType": "application/pdf", "buffer": PDF})
            await page.get_by_role("button", name="Contester").click()
            await expect(page.get_by_role("status")).to_have_text("Merci, votre réponse a été transmise.")
            await expect(page.locator("main")).to_contain_text("Contestée: 8 palettes livrées, 10 facturées")
            await screenshot(page, "portal-disputed")
            await browser.close()

        async def tracker_status():
            journey = await client.get(f"{stack.url('tracker')}/v1/invoices/{invoice_id}/journey", headers=stack.auth)
            return journey.json()["status"] == "EN_LITIGE"
        await eventually(tracker_status, timeout=30, what="the tracker records the dispute")

        async def dunning_paused():
            plan = await client.get(f"{stack.url('dunning')}/v1/invoices/{invoice_id}/reminders", headers=stack.auth)
            return plan.json() if plan.status_code == 200 and "EN_LITIGE" in str(plan.json()) else None
        plan = await eventually(dunning_paused, timeout=30, what="dunning pauses on the dispute")
        assert "paused" in str(plan["audit"]) or plan["status"] == "paused", plan

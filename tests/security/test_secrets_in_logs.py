"""Secrets never reach the logs: the services run as processes through a journey that handles every kind
of secret (API keys, right and wrong; the admin token; link, ack, bounce and key-sealing secrets; the
document-reader token; tracked-link tokens; console passwords and session cookies; DKIM keys), then
every line the services wrote is searched for each of them. Nor are keys, passwords or DKIM keys
stored in clear: every row of every service's database is searched too."""

from __future__ import annotations

import asyncio
import re
from datetime import date

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parcours_devstack import demo
from parcours_devstack.services import SERVICES
from parcours_tracker.domain.acks import sign_ack

from tests.e2e.conftest import DOCUMENT_TOKEN

PASSWORD = "Tr0ub4dor&3-secret-pass"
WRONG_KEY = "prc_0123456789ab_thisIsAWrongKeyThatMustNotBeLogged000000"
DEV_SECRETS = ("dev-link-secret", "dev-bounce-secret", "dev-key-encryption-secret", "dev-ack-secret")


async def database_texts(stack) -> dict[str, str]:
    """Every row of every table of every service's database, as text ("service.table" -> rows)."""
    texts = {}
    for service, process in stack.processes.items():
        engine = create_async_engine(process.env[f"PARCOURS_{service.upper()}_DATABASE_URL"])
        try:
            async with engine.connect() as db:
                tables = (await db.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars()
                for table in list(tables):
                    rows = await db.execute(text(f'SELECT t::text FROM "{table}" t'))
                    texts[f"{service}.{table}"] = "\n".join(rows.scalars())
        finally:
            await engine.dispose()
    return texts


@pytest.fixture
def verbose(monkeypatch):
    """Every service logs at DEBUG: the most it would ever write."""
    for service in SERVICES:
        monkeypatch.setenv(f"PARCOURS_{service.upper()}_LOG_LEVEL", "DEBUG")


async def test_no_secret_is_ever_logged(verbose, stack, tmp_path):
    secrets = {"tenant API key": stack.api_key, "wrong API key": WRONG_KEY, "admin token": demo.ADMIN_TOKEN,
               "document-reader token": DOCUMENT_TOKEN, "console password": PASSWORD,
               **{name: name for name in DEV_SECRETS}}
    auth, admin = stack.auth, {"Authorization": f"Bearer {demo.ADMIN_TOKEN}"}
    for service, path in (("channels", "/v1/branding"), ("dunning", "/v1/strategies")):
        await demo.wait_until_known(stack.url(service), path, stack.api_key)
    async with httpx.AsyncClient(timeout=30) as client:
        customer = {"name": "Logs SAS", "channels": ["email_link"], "contacts": [{"email": "ap@logs.example"}]}
        assert (await client.put(f"{stack.url('router')}/v1/customers/LOGS", json=customer, headers=auth)).is_success
        domain = await client.put(f"{stack.url('channels')}/v1/sender-domain", headers=auth,
                                  json={"domain": "logs.example", "from_address": "billing@logs.example"})
        assert domain.status_code == 201, domain.text
        body = demo.invoice_body("LOGS-1", {"ref": "LOGS", "name": "Logs SAS"}, issued=date.today(), due_in_days=30,
                                 lines=[("Audit", "1", "100.00", "20")])
        posted = await client.post(f"{stack.url('ingest')}/v1/invoices", json=body, headers=auth)
        assert posted.status_code == 202, posted.text
        invoice_id = posted.json()["invoice_id"]
        for service, path in (("ingest", "/v1/batches"), ("router", "/v1/customers"), ("channels", "/v1/branding"),
                              ("tracker", "/v1/invoices"), ("dunning", "/v1/strategies")):  # a wrong key everywhere
            refused = await client.get(f"{stack.url(service)}{path}", headers={"Authorization": f"Bearer {WRONG_KEY}"})
            assert refused.status_code == 401, (service, refused.text)
        document = await client.get(f"{stack.url('ingest')}/v1/invoices/{invoice_id}/ubl",
                                    headers={"Authorization": f"Bearer {DOCUMENT_TOKEN}", "X-Parcours-Tenant": "acme"})
        assert document.status_code == 200, document.text

        [mail] = await stack.sink.wait_for(1, timeout=60)
        text = stack.sink.message(mail["id"])["text"]
        link = re.search(r"http://127\.0\.0\.1:\d+/l/([A-Za-z0-9_\-.]+)", text)
        secrets["tracked-link token"] = link.group(1)
        browser = {"User-Agent": "Mozilla/5.0 (logs)"}
        page = await client.get(link.group(0), follow_redirects=True, headers=browser)
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
        assert (await client.post(f"{page.url}/open", data={"nonce": nonce}, headers=browser)).status_code == 200

        ack = httpx.Request("POST", "/", json={"tenant_id": "acme", "invoice_id": invoice_id, "ack_id": "LOG-1"}).content
        for secret in ("dev-ack-secret", "forged-secret"):
            stamp = str(int(__import__("time").time()))
            await client.post(f"{stack.url('tracker')}/v1/acks/edi", content=ack, headers={
                "Content-Type": "application/json", "X-Parcours-Timestamp": stamp,
                "X-Parcours-Signature": sign_ack(secret, stamp, ack)})

        portal = stack.url("portal")
        user = await client.put(f"{portal}/v1/admin/users", headers=admin, json={
            "tenant_id": "acme", "email": "cm@logs.example", "name": "CM", "role": "credit_manager",
            "password": PASSWORD})
        assert user.status_code in (200, 201), user.text
        wrong = await client.post(f"{portal}/login", data={"email": "cm@logs.example", "password": PASSWORD + "x"})
        assert wrong.status_code != 303
        signed_in = await client.post(f"{portal}/login", data={"email": "cm@logs.example", "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text
        secrets.update({f"session cookie {name}": value for name, value in signed_in.cookies.items() if len(value) > 12})
        assert (await client.get(f"{stack.url('dunning')}/v1/admin/clock", headers=admin)).status_code == 200
    await asyncio.sleep(1.5)  # what the consumers log about these requests

    at_rest = {what: secrets[what] for what in ("tenant API key", "wrong API key", "console password",
                                                 "admin token", "document-reader token", *DEV_SECRETS)}
    stored = [f"{what} in {where}" for where, text in (await database_texts(stack)).items()
              for what, secret in at_rest.items() if secret in text]
    stored += [f"a plain private key in {where}" for where, text in (await database_texts(stack)).items()
               if "PRIVATE KEY" in text]
    assert not stored, "secrets stored in clear: " + ", ".join(stored)

    logs = {path.name: path.read_text(errors="replace") for path in sorted(tmp_path.glob("*.log"))}
    assert {name.split("-")[0] for name in logs} >= {"ingest", "router", "channels", "tracker", "dunning", "portal"}
    assert sum(text.count("\n") for text in logs.values()) > 20, "the services logged something"
    found = [f"{what} in {name}" for what, secret in secrets.items() for name, text in logs.items() if secret in text]
    found += [f"a private key in {name}" for name, text in logs.items() if "PRIVATE KEY" in text]
    assert not found, "secrets in the logs: " + ", ".join(found)

"""Demo tenant, customers and invoices posted through the public APIs, as an ERP would."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal

import httpx

from parcours_devstack.partners.dev import AP_DOMAIN, PUBLIC_BUYER_SIRET

DEMO_TENANT = "demo"
DEMO_SENDER_DOMAIN = "parcours-demo.example"  # published in the dev stack's loopback DNS
PLATFORM_SPF_DOMAIN = "spf.parcours.localhost"
ADMIN_TOKEN = "dev-admin-token"

CUSTOMERS = [
    {"ref": "CUST-ALPHA", "name": "Alpha Industries SAS", "group": "key-accounts",
     "contacts": [{"email": "ap@alpha.example", "name": "Service comptabilité fournisseurs", "role": "accounting"}]},
    {"ref": "CUST-BETA", "name": "Beta Conseil SARL", "group": "default",
     "contacts": [{"email": "factures@beta.example", "name": "Claire Martin", "role": "billing"},
                  {"email": "daf@beta.example", "name": "Direction financière", "role": "accounting"}]},
    {"ref": "CUST-GAMMA", "name": "Gamma Logistique", "group": "default",
     "contacts": [{"email": "compta@gamma.example", "role": "accounting"}]},
    # a public buyer on Chorus Pro (its SIRET is a structure on the simulator) and a buyer on an AP platform
    {"ref": "CUST-VILLE", "name": "Ville de Démo", "group": "public", "channels": ["chorus_pro", "email_link"],
     "siret": PUBLIC_BUYER_SIRET, "contacts": [{"email": "factures@ville-demo.example", "role": "accounting"}]},
    {"ref": "CUST-DELTA", "name": "Delta Distribution SA", "group": "default", "channels": ["ap_platform", "email_link"],
     "contacts": [{"email": f"delta@{AP_DOMAIN}", "role": "accounting"}]},
]


def invoice_body(number: str, customer: dict, *, issued: date, due_in_days: int, lines: list[tuple[str, str, str, str]]) -> dict:
    """An invoice whose totals add up: lines are (description, quantity, unit price, VAT rate)."""
    invoice_lines, base_by_rate = [], {}
    for description, quantity, unit_price, rate in lines:
        total = (Decimal(quantity) * Decimal(unit_price)).quantize(Decimal("0.01"))
        invoice_lines.append({"description": description, "quantity": quantity, "unit_price": unit_price,
                              "vat_rate": rate, "line_total_excl_tax": str(total)})
        base_by_rate[Decimal(rate)] = base_by_rate.get(Decimal(rate), Decimal("0")) + total
    excl = sum(base_by_rate.values(), Decimal("0"))
    tax = sum(((base * rate / 100).quantize(Decimal("0.01")) for rate, base in base_by_rate.items()), Decimal("0"))
    return {
        "number": number, "issue_date": issued.isoformat(), "due_date": (issued + timedelta(days=due_in_days)).isoformat(),
        "currency": "EUR",
        "seller": {"name": "Parcours Démo SARL", "siren": "732829320", "vat_id": "FR44732829320"},
        "buyer": {"customer_ref": customer["ref"], "name": customer["name"],
                  **({"siret": customer["siret"]} if "siret" in customer else {})},
        "lines": invoice_lines,
        "totals": {"total_excl_tax": str(excl), "total_tax": str(tax), "total_incl_tax": str(excl + tax)},
    }


async def ensure_tenant(ingest_url: str, known_key: str | None) -> str:
    """The demo tenant's API key: the one from the last run if it still works, else a new one."""
    async with httpx.AsyncClient(base_url=ingest_url, timeout=30) as client:
        if known_key:
            probe = await client.get("/v1/invoices/00000000-0000-0000-0000-000000000000",
                                     headers={"Authorization": f"Bearer {known_key}"})
            if probe.status_code == 404:
                return known_key
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        created = await client.post("/v1/tenants", json={"name": "Parcours Démo SARL", "tenant_id": DEMO_TENANT}, headers=admin)
        if created.status_code == 201:
            return created.json()["api_key"]
        if created.status_code != 409:
            created.raise_for_status()
        issued = await client.post(f"/v1/tenants/{DEMO_TENANT}/api-keys", headers=admin)
        issued.raise_for_status()
        return issued.json()["api_key"]


DEMO_CONSOLE_USER = "admin@demo.example"


async def ensure_console_user(portal_url: str, password: str, *, tenant_id: str = DEMO_TENANT,
                              email: str = DEMO_CONSOLE_USER, role: str = "admin", name: str = "Démo Admin") -> dict:
    """A console user of the tenant on the portal (created, or its password set again)."""
    async with httpx.AsyncClient(base_url=portal_url, timeout=30) as client:
        response = await client.put("/v1/admin/users", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                    json={"tenant_id": tenant_id, "email": email, "name": name,
                                          "role": role, "password": password})
        response.raise_for_status()
    return {"url": f"{portal_url}/console", "email": email, "password": password}


async def wait_until_known(url: str, path: str, key: str, timeout: float = 60) -> None:
    """Services learn API keys from the broker; wait until `url` accepts `key`."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while (await client.get(path, headers={"Authorization": f"Bearer {key}"})).status_code == 401:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} still refuses the demo key")
            await asyncio.sleep(0.2)


async def ensure_sender_domain(channels_url: str, key: str, zone) -> dict:
    """The demo tenant sends from DEMO_SENDER_DOMAIN: channels makes its DKIM key (kept across
    restarts), the records it asks for go into the loopback DNS `zone`, and its check then passes."""
    auth = {"Authorization": f"Bearer {key}"}
    await wait_until_known(channels_url, "/v1/branding", key)
    async with httpx.AsyncClient(base_url=channels_url, timeout=30) as client:
        setup = await client.put("/v1/sender-domain", headers=auth, json={
            "domain": DEMO_SENDER_DOMAIN, "from_address": f"factures@{DEMO_SENDER_DOMAIN}", "from_name": "Parcours Démo"})
        setup.raise_for_status()
        zone.set(PLATFORM_SPF_DOMAIN, "v=spf1 ip4:127.0.0.1 -all")  # what include:spf.parcours.localhost names
        for record in setup.json()["dns_records"]:
            zone.set(record["name"], record["value"])
        check = await client.get("/v1/sender-domain/check", headers=auth)
        check.raise_for_status()
    report = check.json()
    return {"domain": report["domain"], "ok": report["ok"],
            "checks": {c["name"]: c["status"] for c in report["checks"]}}


async def load_demo(urls: dict[str, str], key: str, today: date | None = None) -> list[dict]:
    """Customers in the router's directory and a handful of invoices through ingest."""
    today = today or date.today()
    auth = {"Authorization": f"Bearer {key}"}
    await wait_until_known(urls["router"], "/v1/customers", key)
    async with httpx.AsyncClient(timeout=30) as client:
        for customer in CUSTOMERS:
            body = {"channels": ["email_link"]} | {k: v for k, v in customer.items() if k not in ("ref", "siret")} \
                | {"language": "fr"}
            (await client.put(f"{urls['router']}/v1/customers/{customer['ref']}", json=body, headers=auth)).raise_for_status()
        invoices = [
            invoice_body(f"DEMO-{today:%Y%m%d}-001", CUSTOMERS[0], issued=today, due_in_days=30,
                         lines=[("Audit de conformité facturation électronique", "3", "950.00", "20")]),
            invoice_body(f"DEMO-{today:%Y%m%d}-002", CUSTOMERS[1], issued=today - timedelta(days=20), due_in_days=30,
                         lines=[("Abonnement plateforme (mois)", "1", "1200.00", "20"), ("Formation", "2", "450.00", "20")]),
            invoice_body(f"DEMO-{today:%Y%m%d}-003", CUSTOMERS[2], issued=today - timedelta(days=40), due_in_days=30,
                         lines=[("Transport palettes", "12", "85.50", "20"), ("Livre technique", "1", "42.00", "5.5")]),
            invoice_body(f"DEMO-{today:%Y%m%d}-004", CUSTOMERS[3], issued=today, due_in_days=30,
                         lines=[("Maintenance du parc informatique (trimestre)", "1", "2400.00", "20")]),
            invoice_body(f"DEMO-{today:%Y%m%d}-005", CUSTOMERS[4], issued=today, due_in_days=45,
                         lines=[("Licences logicielles", "10", "39.00", "20")]),
        ]
        accepted = []
        for body in invoices:
            response = await client.post(f"{urls['ingest']}/v1/invoices", json=body,
                                         headers=auth | {"Idempotency-Key": f"demo-{body['number']}"})
            if response.status_code == 409:  # already there from an earlier run
                continue
            response.raise_for_status()
            accepted.append(response.json())
        return accepted

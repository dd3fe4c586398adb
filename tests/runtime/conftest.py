"""What several runtime tests need: an invoice posted through ingest for a customer the router knows."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from parcours_devstack import demo


@pytest.fixture
def post_routed_invoice():
    """`await post_routed_invoice(ingest_url, router_url, tenant_id, number, headers=...)`: a tenant made on
    ingest, known to the router, with customer C1 on email_link; then the invoice POSTed (202 checked)."""

    async def post(ingest_url: str, router_url: str, tenant_id: str, number: str,
                   headers: dict[str, str] | None = None) -> str:
        async with httpx.AsyncClient(timeout=30) as client:
            created = await client.post(f"{ingest_url}/v1/tenants", json={"name": f"{tenant_id} SA", "tenant_id": tenant_id},
                                        headers={"Authorization": f"Bearer {demo.ADMIN_TOKEN}"})
            key = created.json()["api_key"]
            await demo.wait_until_known(router_url, "/v1/customers", key)
            auth = {"Authorization": f"Bearer {key}"}
            await client.put(f"{router_url}/v1/customers/C1", headers=auth,
                             json={"name": "C1", "channels": ["email_link"], "contacts": [{"email": "ap@c1.example"}]})
            body = demo.invoice_body(number, {"ref": "C1", "name": "C1"}, issued=date.today(), due_in_days=30,
                                     lines=[("x", "1", "10.00", "20")])
            posted = await client.post(f"{ingest_url}/v1/invoices", json=body, headers=auth | (headers or {}))
            assert posted.status_code == 202, posted.text
        return key

    return post

"""The document-reader token: services (channels) read an invoice's documents for its tenant,
named in X-Parcours-Tenant; a wrong token, or another tenant's invoice, reads nothing."""

from __future__ import annotations

import httpx


async def test_the_reader_token_reads_documents_of_the_named_tenant_only(run_service, tenant_key, make_invoice,
                                                                         documents, monkeypatch):
    monkeypatch.setenv("PARCOURS_INGEST_DOCUMENT_READER_TOKEN", "reader-token")
    ingest = await run_service("ingest")
    key = await tenant_key(ingest, tenant_id="acme")
    xml = documents.cii(make_invoice())
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
        posted = await client.post("/v1/invoices", content=xml, headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/xml"})
        assert posted.status_code == 202, posted.text
        source = f"/v1/invoices/{posted.json()['invoice_id']}/source"

        def reader(token: str, tenant: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}", "X-Parcours-Tenant": tenant}

        read = await client.get(source, headers=reader("reader-token", "acme"))
        assert read.status_code == 200 and read.content == xml
        assert (await client.get(source, headers=reader("wrong-token", "acme"))).status_code == 401
        assert (await client.get(source, headers=reader(key, "acme"))).status_code == 401  # a tenant key is no reader token
        assert (await client.get(source, headers=reader("reader-token", "other"))).status_code == 404
        assert (await client.get(source, headers={"Authorization": "Bearer reader-token"})).status_code == 401
        assert (await client.get(source, headers={"Authorization": f"Bearer {key}"})).status_code == 200

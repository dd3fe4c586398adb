"""Ingest follows the router's customer directory (customer.changed on the broker): the documents it
prepares take the customer's group CGV and language, and forget them when the customer is removed."""

from __future__ import annotations

import io

from pypdf import PdfReader

from parcours_contracts import CustomerChanged

PDF = {"Content-Type": "application/pdf"}


async def test_customer_group_and_language_from_the_router_shape_the_facturx(ingest, client, acme, make_invoice,
                                                                              documents, publish, eventually):
    for group, text in (("", "CONDITIONS GENERALES"), ("export", "EXPORT TERMS")):
        response = await client.put("/v1/cgv", params={"group": group, "after_page": 0},
                                    content=documents.text_pdf(text), headers={**acme, **PDF})
        assert response.status_code == 200, response.text
    invoice_id = (await client.post("/v1/invoices", json=make_invoice("F-2026-0200"), headers=acme)).json()["invoice_id"]

    async def first_pages(**params) -> list[str]:
        response = await client.get(f"/v1/invoices/{invoice_id}/facturx", params=params, headers=acme)
        assert response.status_code == 200, response.text
        return [page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages[:2]]

    cgv, invoice = await first_pages()
    assert "CONDITIONS GENERALES" in cgv and "FACTURE N° F-2026-0200" in invoice  # no profile yet: defaults

    changed = dict(tenant_id="acme", correlation_id="customer-CUST-42", customer_ref="CUST-42", name="Dupont SARL")
    await publish(CustomerChanged(**changed, group="export", language="en"),
                  CustomerChanged(tenant_id="globex", correlation_id="customer-CUST-42", customer_ref="CUST-42",
                                  group="other", language="fr"))  # another tenant's customer of the same ref

    async def shows(cgv_text: str, title: str, **params):
        pages = await first_pages(**params)
        return pages if cgv_text in pages[0] and title in pages[1] else None

    await eventually(lambda: shows("EXPORT TERMS", "INVOICE No. F-2026-0200"), what="export CGV, in English")
    assert await shows("EXPORT TERMS", "FACTURE N° F-2026-0200", lang="fr")  # ?lang= still overrides

    await publish(CustomerChanged(**changed, language="en"))  # out of the group: the default CGV again
    await eventually(lambda: shows("CONDITIONS GENERALES", "INVOICE No. F-2026-0200"), what="default CGV, English")
    await publish(CustomerChanged(**changed, deleted=True))
    await eventually(lambda: shows("CONDITIONS GENERALES", "FACTURE N° F-2026-0200"), what="defaults after removal")

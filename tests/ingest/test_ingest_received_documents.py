"""Received documents live in the tenant's blob store, content-addressed: the PDF sent with an invoice
(multipart, base64 in JSON, a Factur-X, a part of a split batch) and the XML an invoice was read from.
Their rows name the blob by its SHA-256 and hold no bytes; the API serves them back from the store.
Rows written before the store kept them (bytes in the row) are still served."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import httpx
from sqlalchemy import select, update

from parcours_ingest.store.models import InvoicePdfRow, InvoiceSourceRow

XML = {"Content-Type": "application/xml"}


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def test_received_pdfs_and_sources_are_blobs_named_by_their_rows(run_service, tenant_key, tmp_path, make_invoice,
                                                                      documents, finished_batch):
    ingest = await run_service("ingest", blob_store_url=f"file:{tmp_path / 'blobs'}")
    acme = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='acme', tenant_name='ACME SAS')}"}
    plain, inline = documents.text_pdf("Facture F-MULTI"), documents.text_pdf("Facture F-INLINE")
    xml = documents.ubl(make_invoice("F-XML"))
    lot = documents.text_pdf("Facture F-LOT-1", "Facture F-LOT-2")
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
        ids = {
            "multipart": (await client.post("/v1/invoices", headers=acme, files={
                "invoice": (None, json.dumps(make_invoice("F-MULTI")), "application/json"),
                "pdf": ("f.pdf", plain, "application/pdf")})).json()["invoice_id"],
            "inline": (await client.post("/v1/invoices", headers=acme, json={
                **make_invoice("F-INLINE"), "pdf": base64.b64encode(inline).decode()})).json()["invoice_id"],
            "xml": (await client.post("/v1/invoices", content=xml, headers={**acme, **XML})).json()["invoice_id"],
        }
        assert (await client.put("/v1/split-rules/pages", json={"mode": "pages", "pages": 1},
                                 headers=acme)).status_code in (200, 201)
        batch = await client.post("/v1/batches", params={"split_rule": "pages"}, headers=acme, files={
            "pdf": ("lot.pdf", lot, "application/pdf"),
            "data": ("lot.json", json.dumps([make_invoice("F-LOT-1"), make_invoice("F-LOT-2")]), "application/json")})
        assert batch.status_code == 202, batch.text
        items = (await finished_batch(client, acme, batch.json()["batch_id"]))["items"]
        assert [i["status"] for i in items] == ["accepted", "accepted"]

        served = {name: (await client.get(f"/v1/invoices/{invoice_id}/pdf", headers=acme)).content
                  for name, invoice_id in {**ids, "lot": items[0]["invoice_id"]}.items() if name != "xml"}
        source = await client.get(f"/v1/invoices/{ids['xml']}/source", headers=acme)
    assert (served["multipart"], served["inline"]) == (plain, inline)
    assert documents.page_texts(served["lot"]) == ["Facture F-LOT-1"]
    assert source.content == xml and source.headers["etag"] == f'"{sha(xml)}"'

    async with ingest.ctx.sessions() as session:
        pdf_rows = (await session.execute(select(InvoicePdfRow.sha256, InvoicePdfRow.content))).all()
        source_rows = (await session.execute(select(InvoiceSourceRow.sha256, InvoiceSourceRow.content))).all()
    assert all(content is None for _, content in pdf_rows + source_rows), "no bytes in the database"
    stored = {p.name: p.read_bytes() for p in (tmp_path / "blobs" / "acme").rglob("*") if p.is_file()}
    assert {sha(plain), sha(inline), sha(xml), sha(served["lot"])} <= {digest for digest, _ in pdf_rows + source_rows}
    for digest, _ in pdf_rows + source_rows:
        assert sha(stored[digest]) == digest


async def test_bytes_kept_in_a_row_before_the_blob_store_are_still_served(ingest, client, acme, make_invoice, documents):
    older = documents.text_pdf("Facture F-OLD")
    posted = await client.post("/v1/invoices", headers=acme, files={
        "invoice": (None, json.dumps(make_invoice("F-OLD")), "application/json"),
        "pdf": ("f.pdf", documents.text_pdf("elsewhere"), "application/pdf")})
    invoice_id = uuid.UUID(posted.json()["invoice_id"])
    async with ingest.ctx.sessions.begin() as session:  # as migration 0007 left the rows it found
        await session.execute(update(InvoicePdfRow).where(InvoicePdfRow.invoice_id == invoice_id)
                              .values(content=older, sha256=None))

    assert (await client.get(f"/v1/invoices/{invoice_id}/pdf", headers=acme)).content == older

"""Prepared documents are built once per set of inputs and kept in the blob store: the same GET serves
the stored Factur-X; a new CGV, an annex or another language builds a new one (the rendered pages are
reused when only the CGV or the annexes change); what another tenant prepared is never served."""

from __future__ import annotations

import hashlib
import io

import httpx
from pypdf import PdfReader
from sqlalchemy import select

from parcours_ingest.store.document_models import PreparedDocumentRow

PDF = {"Content-Type": "application/pdf"}


async def prepared(ingest) -> list[tuple[str, str]]:
    async with ingest.ctx.sessions() as session:
        rows = (await session.execute(select(PreparedDocumentRow).order_by(PreparedDocumentRow.created_at))).scalars()
        return [(row.kind, row.sha256) for row in rows]


async def test_facturx_is_built_once_per_inputs_and_kept_in_the_blob_store(run_service, tenant_key, make_invoice,
                                                                         documents, tmp_path):
    ingest = await run_service("ingest", blob_store_url=f"file:{tmp_path / 'blobs'}")
    acme = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='acme')}"}
    globex = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='globex', tenant_name='Globex')}"}
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
        body = make_invoice("F-2026-0300")
        invoice_id = (await client.post("/v1/invoices", json=body, headers=acme)).json()["invoice_id"]
        url = f"/v1/invoices/{invoice_id}/facturx"

        first = await client.get(url, headers=acme)
        assert first.status_code == 200
        kinds = await prepared(ingest)
        assert [kind for kind, _ in kinds] == ["rendered", "facturx"]
        rendered_sha, facturx_sha = kinds[0][1], kinds[1][1]
        assert facturx_sha == hashlib.sha256(first.content).hexdigest()
        assert (tmp_path / "blobs" / "acme" / facturx_sha[:2] / facturx_sha).read_bytes() == first.content
        for _ in range(2):  # served from the store: the very bytes built first, nothing built again
            assert (await client.get(url, headers=acme)).content == first.content
            assert (await client.get(f"/v1/invoices/{invoice_id}/pdf", headers=acme)).content == first.content
        assert len(await prepared(ingest)) == 2

        # a CGV for the tenant: a new Factur-X with it, on the same rendered pages
        await client.put("/v1/cgv", params={"after_page": 0}, content=documents.text_pdf("CGV V1"), headers={**acme, **PDF})
        with_cgv = await client.get(url, headers=acme)
        assert documents.page_texts(with_cgv.content)[0] == "CGV V1"
        await client.put("/v1/cgv", params={"after_page": 0}, content=documents.text_pdf("CGV V2"), headers={**acme, **PDF})
        assert documents.page_texts((await client.get(url, headers=acme)).content)[0] == "CGV V2"
        await client.post(f"/v1/invoices/{invoice_id}/annexes", params={"filename": "annex.pdf"},
                          content=documents.text_pdf("ANNEX"), headers={**acme, **PDF})
        with_annex = await client.get(url, headers=acme)
        assert documents.page_texts(with_annex.content)[-1] == "ANNEX"
        english = await client.get(url, params={"lang": "en"}, headers=acme)
        assert "INVOICE No. F-2026-0300" in PdfReader(io.BytesIO(english.content)).pages[1].extract_text()
        kinds = await prepared(ingest)
        assert [kind for kind, _ in kinds].count("rendered") == 2  # French once (reused four times), English once
        assert [kind for kind, _ in kinds].count("facturx") == 5
        assert kinds[0] == ("rendered", rendered_sha)

        # both languages stay served from the store
        assert (await client.get(url, headers=acme)).content == with_annex.content
        assert (await client.get(url, params={"lang": "en"}, headers=acme)).content == english.content
        assert len(await prepared(ingest)) == 7

        # another tenant: not found, and nothing of acme's served
        assert (await client.get(url, headers=globex)).status_code == 404


async def test_a_build_missing_a_blob_is_served_but_not_kept(run_service, tenant_key, make_invoice, documents,
                                                             tmp_path):
    ingest = await run_service("ingest", blob_store_url=f"file:{tmp_path / 'blobs'}")
    acme = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='acme')}"}
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
        cgv_pdf = documents.text_pdf("CGV LOST")
        digest = (await client.put("/v1/cgv", params={"after_page": 0}, content=cgv_pdf,
                                   headers={**acme, **PDF})).json()["sha256"]
        (tmp_path / "blobs" / "acme" / digest[:2] / digest).unlink()  # the store lost it
        invoice_id = (await client.post("/v1/invoices", json=make_invoice(), headers=acme)).json()["invoice_id"]
        url = f"/v1/invoices/{invoice_id}/facturx"
        without = await client.get(url, headers=acme)
        assert without.status_code == 200 and "CGV LOST" not in documents.page_texts(without.content)
        assert [kind for kind, _ in await prepared(ingest)] == ["rendered"]  # the incomplete Factur-X is not kept

        await client.put("/v1/cgv", params={"after_page": 0}, content=cgv_pdf, headers={**acme, **PDF})  # restored
        assert documents.page_texts((await client.get(url, headers=acme)).content)[0] == "CGV LOST"
        assert [kind for kind, _ in await prepared(ingest)] == ["rendered", "facturx"]

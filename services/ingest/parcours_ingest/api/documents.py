"""Document preparation: the tenants' CGV per customer group (`/v1/cgv`), an invoice's annexes, and
the outgoing documents built from a stored invoice: the Factur-X PDF (rendered PDF or the one sent,
CGV inserted, annexes merged, then CII embedded) and the CII / UBL XML."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from parcours_runtime.problems import PROBLEM_JSON, Problem
from parcours_runtime.service import ServiceContext
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork
from parcours_ingest.api.body import media_type_of, read_body
from parcours_ingest.api.readers import authenticate_document_reader
from parcours_ingest.domain.cii_out import cii_invoice
from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.domain.documents.pdf import PdfLimits, inspect_pdf
from parcours_ingest.domain.facturx_out import Attachment, Insert
from parcours_ingest.domain.invoice import InvoiceContent
from parcours_ingest.domain.legal import LegalMentions
from parcours_ingest.domain.outgoing import FacturxInputs, StoredPart, build_facturx, facturx_key, render, render_key
from parcours_ingest.domain.render_pdf import LABELS, Branding
from parcours_ingest.domain.ubl_out import ubl_invoice
from parcours_ingest.store import documents as store
from parcours_ingest.store import invoices as invoice_store
from parcours_ingest.store.blobs import BlobIntegrityError, BlobStore
from parcours_ingest.store.document_models import DEFAULT_GROUP, TenantCgvRow

router = APIRouter(tags=["documents"])
_PROBLEM = {"content": {PROBLEM_JSON: {}}}
_GROUP = re.compile(r"^[A-Za-z0-9._-]{0,64}$")
Group = Annotated[str, Query(pattern=_GROUP.pattern, description="Customer group ('' or absent: the default CGV).")]
Language = Annotated[Literal["fr", "en"] | None, Query(alias="lang", description="Language of a rendered PDF.")]


class CgvRead(BaseModel):
    group: str
    sha256: str
    filename: str | None
    pages: int
    after_page: int | None


def _cgv_read(row: TenantCgvRow) -> CgvRead:
    return CgvRead(group=row.customer_group, sha256=row.sha256, filename=row.filename, pages=row.pages,
                   after_page=row.after_page)


def _blobs(request: Request) -> BlobStore:
    return request.app.state.ctx.extras["blobs"]


def _limits(ctx: ServiceContext) -> PdfLimits:
    return PdfLimits(max_pages=ctx.settings.max_pdf_pages, max_decompressed_bytes=ctx.settings.max_pdf_stream_bytes,
                     max_xml_bytes=ctx.settings.max_body_bytes)


async def _checked_pdf(request: Request, *, what: str) -> bytes:
    """The request body, a PDF that passes the same safety checks as invoices' (problem 4xx otherwise)."""
    ctx: ServiceContext = request.app.state.ctx
    if media_type_of(request.headers.get("content-type", "")) != "application/pdf":
        raise Problem(415, f"Send the {what} as `Content-Type: application/pdf`.")
    content = await read_body(request, max_bytes=ctx.settings.max_body_bytes)
    try:
        await asyncio.to_thread(inspect_pdf, content, limits=_limits(ctx))
    except DocumentError as exc:
        raise Problem(exc.status, exc.detail, slug=exc.slug) from None
    return content


@router.put("/v1/cgv", response_model=CgvRead, summary="Set the CGV pages for a customer group",
            responses={415: _PROBLEM, 422: _PROBLEM, 413: _PROBLEM})
async def put_cgv(request: Request, group: Group = DEFAULT_GROUP,
                  after_page: Annotated[int | None, Query(ge=0, description="Insert after this page of the invoice "
                                                                            "(0: before it; absent: at its end).")] = None,
                  filename: Annotated[str | None, Query(max_length=255)] = None,
                  tenant: Tenant = Depends(authenticate)) -> CgvRead:
    """The PDF body becomes the CGV inserted into every invoice PDF Parcours prepares for the group's customers."""
    from pypdf import PdfReader

    content = await _checked_pdf(request, what="CGV")
    pages = len(PdfReader(io.BytesIO(content)).pages)
    digest = await _blobs(request).put(tenant.id, content)
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        row = await store.put_cgv(uow.session, tenant_id=tenant.id, group=group, sha256=digest, filename=filename,
                                  pages=pages, after_page=after_page)
        read = _cgv_read(row)
        await uow.commit()
    return read


@router.get("/v1/cgv", response_model=list[CgvRead], summary="List the CGV per customer group")
async def list_cgv(request: Request, tenant: Tenant = Depends(authenticate)) -> list[CgvRead]:
    async with request.app.state.ctx.sessions() as session:
        return [_cgv_read(row) for row in await store.list_cgv(session, tenant_id=tenant.id)]


@router.delete("/v1/cgv", status_code=204, summary="Remove a group's CGV", responses={404: _PROBLEM})
async def delete_cgv(request: Request, group: Group = DEFAULT_GROUP, tenant: Tenant = Depends(authenticate)) -> Response:
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        if not await store.delete_cgv(uow.session, tenant_id=tenant.id, group=group):
            raise Problem(404, f"No CGV for group {group!r}.")
        await uow.commit()
    return Response(status_code=204)


class AnnexRead(BaseModel):
    annex_id: uuid.UUID
    filename: str
    media_type: str
    sha256: str
    size: int
    merged: bool


@router.post("/v1/invoices/{invoice_id}/annexes", status_code=201, response_model=AnnexRead,
             summary="Add an annex or a supporting file to an invoice",
             responses={404: _PROBLEM, 413: _PROBLEM, 422: _PROBLEM})
async def add_annex(invoice_id: uuid.UUID, request: Request,
                    filename: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")],
                    tenant: Tenant = Depends(authenticate)) -> AnnexRead:
    """A PDF is merged after the invoice's pages; any other file is attached inside the Factur-X PDF."""
    ctx: ServiceContext = request.app.state.ctx
    media_type = media_type_of(request.headers.get("content-type", "")) or "application/octet-stream"
    if media_type == "application/pdf":
        content = await _checked_pdf(request, what="annex")
    else:
        content = await read_body(request, max_bytes=ctx.settings.max_body_bytes)
    async with ctx.sessions() as session:
        if await invoice_store.get_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id) is None:
            raise Problem(404, f"No invoice {invoice_id} for this tenant.")
    digest = await _blobs(request).put(tenant.id, content)
    async with UnitOfWork(ctx.sessions) as uow:
        row = await store.add_annex(uow.session, tenant_id=tenant.id, invoice_id=invoice_id, filename=filename,
                                    media_type=media_type, sha256=digest, size=len(content))
        await uow.commit()
    return AnnexRead(annex_id=row.id, filename=row.filename, media_type=row.media_type, sha256=row.sha256,
                     size=row.size, merged=row.media_type == "application/pdf")


@router.get("/v1/invoices/{invoice_id}/annexes", response_model=list[AnnexRead], summary="List an invoice's annexes",
            responses={404: _PROBLEM})
async def list_annexes(invoice_id: uuid.UUID, request: Request,
                       tenant: Tenant = Depends(authenticate_document_reader)) -> list[AnnexRead]:
    """What was added to the invoice, in the order it was added (channels check a partner's limits on it)."""
    async with request.app.state.ctx.sessions() as session:
        if await invoice_store.get_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id) is None:
            raise Problem(404, f"No invoice {invoice_id} for this tenant.")
        annexes = await store.annexes_of(session, tenant_id=tenant.id, invoice_id=invoice_id)
    return [AnnexRead(annex_id=a.id, filename=a.filename, media_type=a.media_type, sha256=a.sha256, size=a.size,
                      merged=a.media_type == "application/pdf") for a in annexes]


@router.get("/v1/invoices/{invoice_id}/annexes/{annex_id}", response_class=Response, summary="Download an annex",
            responses={200: {"content": {"application/octet-stream": {}}}, 404: _PROBLEM})
async def read_annex(invoice_id: uuid.UUID, annex_id: uuid.UUID, request: Request,
                     tenant: Tenant = Depends(authenticate_document_reader)) -> Response:
    async with request.app.state.ctx.sessions() as session:
        annexes = await store.annexes_of(session, tenant_id=tenant.id, invoice_id=invoice_id)
    annex = next((a for a in annexes if a.id == annex_id), None)
    content = await _blobs(request).get(tenant.id, annex.sha256) if annex is not None else None
    if content is None:
        raise Problem(404, f"No annex {annex_id} of invoice {invoice_id} for this tenant.")
    return Response(content, media_type=annex.media_type, headers={"ETag": f'"{annex.sha256}"'})


@router.get("/v1/invoices/{invoice_id}/facturx", response_class=Response, summary="The invoice as Factur-X PDF",
            responses={200: {"content": {"application/pdf": {}}}, 404: _PROBLEM})
async def read_facturx(invoice_id: uuid.UUID, request: Request, lang: Language = None,
                       tenant: Tenant = Depends(authenticate_document_reader)) -> Response:
    """PDF/A-3 with the CII (EN 16931) embedded: the PDF sent with the invoice or, for an invoice sent as data,
    one rendered by Parcours; the customer group's CGV inserted and the annexes merged before embedding."""
    pdf = await prepared_pdf(request, tenant_id=tenant.id, invoice_id=invoice_id, language=lang)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{invoice_id}.pdf"'})


@router.get("/v1/invoices/{invoice_id}/cii", response_class=Response, summary="The invoice as CII D16B (EN 16931)",
            responses={200: {"content": {"application/xml": {}}}, 404: _PROBLEM})
async def read_cii(invoice_id: uuid.UUID, request: Request,
                   tenant: Tenant = Depends(authenticate_document_reader)) -> Response:
    invoice, _ = await _stored(request, tenant_id=tenant.id, invoice_id=invoice_id)
    return Response(cii_invoice(invoice, mentions=LegalMentions()), media_type="application/xml")


@router.get("/v1/invoices/{invoice_id}/ubl", response_class=Response, summary="The invoice as UBL 2.1 (EN 16931)",
            responses={200: {"content": {"application/xml": {}}}, 404: _PROBLEM})
async def read_ubl(invoice_id: uuid.UUID, request: Request,
                   tenant: Tenant = Depends(authenticate_document_reader)) -> Response:
    """With the tenant's API key, or the document-reader token and X-Parcours-Tenant (channels' Peppol adapter)."""
    invoice, _ = await _stored(request, tenant_id=tenant.id, invoice_id=invoice_id)
    return Response(ubl_invoice(invoice, mentions=LegalMentions()), media_type="application/xml")


async def _stored(request: Request, *, tenant_id: str, invoice_id: uuid.UUID):
    async with request.app.state.ctx.sessions() as session:
        row = await invoice_store.get_invoice(session, tenant_id=tenant_id, invoice_id=invoice_id)
    if row is None:
        raise Problem(404, f"No invoice {invoice_id} for this tenant.")
    return InvoiceContent.model_validate(row.document), row


async def prepared_pdf(request: Request, *, tenant_id: str, invoice_id: uuid.UUID,
                       language: str | None = None) -> bytes:
    """The outgoing Factur-X PDF of a stored invoice (see read_facturx), built once per set of inputs: the
    rendered pages and the Factur-X are kept in the blob store under the hash of what they were built from."""
    ctx: ServiceContext = request.app.state.ctx
    blobs = _blobs(request)
    invoice, row = await _stored(request, tenant_id=tenant_id, invoice_id=invoice_id)
    async with ctx.sessions() as session:
        if row.has_pdf and row.source_format == "factur-x":  # signed off by the tenant: served as received
            return await invoice_store.get_pdf(session, blobs, tenant_id=tenant_id, invoice_id=invoice_id)
        profile = await store.customer_profile(session, tenant_id=tenant_id, customer_ref=invoice.buyer.customer_ref)
        cgv = await store.cgv_for(session, tenant_id=tenant_id, group=profile.customer_group if profile else None)
        annexes = await store.annexes_of(session, tenant_id=tenant_id, invoice_id=invoice_id)
        branded = await store.branding_of(session, tenant_id=tenant_id)
        fingerprint = branded.fingerprint if branded is not None else None
        language = language or (profile.language if profile and profile.language in LABELS else None) \
            or ctx.settings.default_language
        key = facturx_key(invoice_id=invoice_id, document=row.document, language=language, sent_pdf=row.has_pdf,
                          cgv=StoredPart(cgv.sha256, after_page=cgv.after_page) if cgv is not None else None,
                          annexes=[StoredPart(a.sha256, a.filename, a.media_type) for a in annexes],
                          branding=fingerprint)
        if (built := await _cached(session, blobs, tenant_id=tenant_id, inputs_key=key)) is not None:
            return built
        pages_key = render_key(invoice_id=invoice_id, document=row.document, language=language, branding=fingerprint)
        pages = await (invoice_store.get_pdf(session, blobs, tenant_id=tenant_id, invoice_id=invoice_id) if row.has_pdf
                       else _cached(session, blobs, tenant_id=tenant_id, inputs_key=pages_key))
    if pages is None:
        pages = await asyncio.to_thread(render, invoice, language, _branding(branded))
        await _remember(request, tenant_id=tenant_id, invoice_id=invoice_id, inputs_key=pages_key, kind="rendered",
                        content=pages)
    cgv_pdf = await blobs.get(tenant_id, cgv.sha256) if cgv is not None else None
    contents = {annex.id: await blobs.get(tenant_id, annex.sha256) for annex in annexes}
    present = [a for a in annexes if contents[a.id] is not None]
    inputs = FacturxInputs(
        invoice, language, pdf=pages, cgv=Insert(cgv_pdf, cgv.after_page) if cgv_pdf is not None else None,
        annexes=[contents[a.id] for a in present if a.media_type == "application/pdf"],
        attachments=[Attachment(a.filename, contents[a.id]) for a in present if a.media_type != "application/pdf"])
    built = await asyncio.to_thread(build_facturx, inputs)
    if len(present) == len(annexes) and (cgv is None or cgv_pdf is not None):  # a blob lost: served, never kept
        await _remember(request, tenant_id=tenant_id, invoice_id=invoice_id, inputs_key=key, kind="facturx",
                        content=built)
    return built


def _branding(row) -> Branding | None:
    if row is None:
        return None
    return Branding(**({"accent": row.primary_color} if row.primary_color else {}), footer=row.legal_footer,
                    name=row.name, logo=row.logo)


async def _cached(session, blobs: BlobStore, *, tenant_id: str, inputs_key: str) -> bytes | None:
    digest = await store.prepared_document(session, tenant_id=tenant_id, inputs_key=inputs_key)
    if digest is None:
        return None
    try:
        return await blobs.get(tenant_id, digest)  # None if the blob is gone: built again
    except BlobIntegrityError:
        return None


async def _remember(request: Request, *, tenant_id: str, invoice_id: uuid.UUID, inputs_key: str, kind: str,
                    content: bytes) -> None:
    digest = await _blobs(request).put(tenant_id, content)
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        await store.remember_prepared(uow.session, tenant_id=tenant_id, inputs_key=inputs_key, invoice_id=invoice_id,
                                      kind=kind, sha256=digest)
        await uow.commit()

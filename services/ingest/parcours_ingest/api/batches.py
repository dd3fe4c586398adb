"""`/v1/batches`: many invoices at once — a JSON array, a CSV or XLSX export read with a mapping
profile, or a PDF of many invoices split by a rule and matched to its data. The file is checked as a
whole here (a refused file changes nothing), stored, and answered 202; the batch worker then checks
and stores each item; `GET /v1/batches/{id}` tells the progress and every item's outcome."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from parcours_runtime.problems import PROBLEM_JSON, Problem, field_error
from parcours_runtime.service import ServiceContext
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_ingest.api.body import FormPart, form_parts, media_type_of, read_body
from parcours_ingest.api.formats import document_problem
from parcours_ingest.api.invoices import FLOW_HEADER_PARAMETERS, flow_headers, replay
from parcours_ingest.api.batch_reading import batch_pdf_limits, data_items
from parcours_ingest.config import Settings
from parcours_ingest.domain.csv_mapping import MappingProfile, TableError
from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.domain.documents.pdf import inspect_pdf
from parcours_ingest.domain.spreadsheets import MACRO_MEDIA_TYPES, XLSX_MEDIA_TYPE
from parcours_ingest.store import batches as store
from parcours_ingest.store import invoices as invoices_store
from parcours_ingest.store.batch_models import BatchItemRow, BatchRow, MappingProfileRow, SplitRuleRow

router = APIRouter(prefix="/v1/batches", tags=["batches"])

_PROBLEM = {"content": {PROBLEM_JSON: {}}}
CSV_MEDIA_TYPES = ("text/csv", "application/csv")
_DATA_TYPES = {"application/json": "json", **{t: "csv" for t in CSV_MEDIA_TYPES}, XLSX_MEDIA_TYPE: "xlsx"}
_EXTENSIONS = {".json": "application/json", ".csv": "text/csv", ".xlsx": XLSX_MEDIA_TYPE}
ACCEPTED = ("application/json (an array of invoices), text/csv or XLSX (with ?profile=), or multipart/form-data "
            "(parts `pdf` and `data`, with ?split_rule=)")
_BATCH_BODY = {"parameters": FLOW_HEADER_PARAMETERS, "requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Invoice"}}},
    "text/csv": {"schema": {"type": "string", "description": "Read with the mapping profile `profile`."}},
    XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary", "description": "Read with `profile`; "
                                 "workbooks with formulas or macros are refused."}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["pdf", "data"], "properties": {
        "pdf": {"type": "string", "format": "binary", "description": "The PDF of many invoices (may repeat)."},
        "data": {"type": "string", "format": "binary", "description": "Their data: JSON array, CSV or XLSX."}}}},
}}}


class BatchAccepted(BaseModel):
    batch_id: uuid.UUID
    status: Literal["pending"] = "pending"
    kind: str
    total_items: int | None = Field(description="Items found in the data (a split batch knows once it is split).")


class BatchItemRead(BaseModel):
    seq: int
    status: Literal["accepted", "rejected", "duplicate", "unmatched"]
    number: str | None
    invoice_id: uuid.UUID | None
    location: dict[str, Any] = Field(description="`index` in a JSON array; `rows` (as numbered in the file, header "
                                                 "row included) in a CSV/XLSX; `file` and `pages` of a PDF part.")
    code: str | None = Field(description="Problem type slug of a refused item.")
    detail: str | None
    errors: list[dict[str, Any]] | None = Field(description="As in problem+json: `pointer` into the invoice, plus "
                                                            "`row` and `column` for CSV/XLSX.")
    part: str | None = Field(default=None, description="Where an unmatched PDF part can be downloaded.")


class BatchSummary(BaseModel):
    batch_id: uuid.UUID
    kind: str
    status: Literal["pending", "processing", "done", "failed"]
    filename: str | None
    total_items: int | None
    processed_items: int
    accepted_items: int
    rejected_items: int
    error: dict[str, Any] | None = Field(description="Why the whole batch failed, as problem members.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BatchRead(BatchSummary):
    items: list[BatchItemRead]


@router.post("", status_code=202, response_model=BatchAccepted, openapi_extra=_BATCH_BODY, summary="Receive a batch",
             responses={400: _PROBLEM, 401: _PROBLEM, 413: _PROBLEM, 415: _PROBLEM, 422: _PROBLEM})
async def receive_batch(
        request: Request, tenant: Tenant = Depends(authenticate),
        profile: Annotated[str | None, Query(max_length=63, description="Mapping profile of a CSV/XLSX batch.")] = None,
        split_rule: Annotated[str | None, Query(max_length=63, description="Split rule of a PDF batch.")] = None,
        filename: Annotated[str | None, Query(max_length=255, description="The file's name, to tell batches apart.")] = None,
        ) -> Response:
    """Check the file as a whole and keep it; its invoices are checked and stored in the background."""
    idempotency_key, correlation_id = flow_headers(request)
    ctx: ServiceContext = request.app.state.ctx
    settings: Settings = ctx.settings
    content_type = request.headers.get("content-type", "")
    media_type = media_type_of(content_type)
    if media_type in MACRO_MEDIA_TYPES:
        raise Problem(415, "Macro-enabled and legacy Excel workbooks (.xlsm, .xls) are refused: save as .xlsx.",
                      slug="spreadsheet-with-macros")
    if media_type == "multipart/form-data":
        raw = await read_body(request, max_bytes=settings.max_batch_bytes)
        data, pdfs = _split_upload(form_parts(raw, content_type), settings)
    elif media_type in _DATA_TYPES:
        raw = await read_body(request, max_bytes=settings.max_body_bytes)
        data, pdfs = FormPart("data", filename, media_type, raw), []
    else:
        raise Problem(415, f"Send the batch as {ACCEPTED}.")
    fingerprint = _fingerprint(request.url.query, data, pdfs)
    if idempotency_key is not None:
        async with ctx.sessions() as session:
            earlier = await invoices_store.find_idempotency_key(session, tenant_id=tenant.id, key=idempotency_key)
        if earlier is not None:
            return replay(earlier, request_hash=fingerprint)
    options: dict[str, Any] = {}
    async with ctx.sessions() as session:
        if _DATA_TYPES[data.media_type] != "json":
            options["profile"] = await _definition(session, MappingProfileRow, tenant, "profile", profile)
        if pdfs:
            options["split_rule"] = await _definition(session, SplitRuleRow, tenant, "split_rule", split_rule)
    total = await asyncio.to_thread(_check_files, data, pdfs, options, settings)
    kind = "pdf-split" if pdfs else _DATA_TYPES[data.media_type]
    files = [("data", data.media_type, data.content)] + [(f"pdf-{i}", "application/pdf", pdf) for i, pdf in enumerate(pdfs)]
    batch_id = uuid.uuid4()
    accepted = BatchAccepted(batch_id=batch_id, kind=kind, total_items=None if pdfs else total).model_dump(mode="json")
    try:
        async with ctx.sessions.begin() as session:
            await store.add_batch(session, batch_id=batch_id, tenant_id=tenant.id, kind=kind, options=options,
                                  filename=filename or data.filename, correlation_id=correlation_id,
                                  files=files, total_items=None if pdfs else total)
            if idempotency_key is not None:
                await invoices_store.add_idempotency_key(session, tenant_id=tenant.id, key=idempotency_key,
                                                         request_hash=fingerprint, status=202, response_json=accepted)
    except IntegrityError:  # the same key, sent twice at once: the other request stored its batch
        async with ctx.sessions() as session:
            earlier = await invoices_store.find_idempotency_key(session, tenant_id=tenant.id, key=idempotency_key)
        if earlier is None:
            raise
        return replay(earlier, request_hash=fingerprint)
    ctx.extras["batch_worker"].wake()
    return JSONResponse(accepted, status_code=202, headers={"Location": f"/v1/batches/{batch_id}"})


def _fingerprint(query: str, data: FormPart, pdfs: list[bytes]) -> str:
    """What tells a retry from another batch: the query and the files (not a multipart body's random boundary)."""
    digest = hashlib.sha256(f"{query}\n{data.media_type}\n".encode())
    for content in (data.content, *pdfs):
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


def _split_upload(parts: list[FormPart], settings: Settings) -> tuple[FormPart, list[bytes]]:
    """The `data` part and the `pdf` parts of a split batch, each within the per-file limit."""
    data = [part for part in parts if part.name == "data"]
    pdfs = [part.content for part in parts if part.name == "pdf"]
    missing = [field_error((name,), "missing part", "missing") for name, found in (("pdf", pdfs), ("data", data))
               if not found]
    if missing:
        raise Problem(422, "A split batch needs a part `pdf` (the PDF of many invoices) and a part `data`.",
                      errors=missing)
    for part in parts:
        if len(part.content) > settings.max_body_bytes:
            raise Problem(413, f"The part {part.name!r} exceeds the limit of {settings.max_body_bytes} bytes per file.")
    part = data[0]
    media_type = part.media_type
    if media_type not in _DATA_TYPES:
        extension = "." + (part.filename or "").rsplit(".", 1)[-1].lower()
        media_type = _EXTENSIONS.get(extension, media_type)
    if media_type not in _DATA_TYPES:
        raise Problem(415, "The part `data` is JSON, CSV or XLSX (say so with its Content-Type or file name).",
                      errors=[field_error(("data",), f"unsupported type {part.media_type}", "unsupported")])
    return FormPart("data", part.filename, media_type, part.content), pdfs


async def _definition(session, model, tenant: Tenant, parameter: str, name: str | None) -> dict:
    """The tenant's saved profile or rule named in the query; 422 if absent or unknown."""
    row = await store.get_definition(session, model, tenant_id=tenant.id, name=name) if name else None
    if row is None:
        what = "mapping profile" if model is MappingProfileRow else "split rule"
        detail = f"no {what} {name!r}" if name else "required"
        raise Problem(422, f"This batch needs a saved {what}: ?{parameter}=<name>.",
                      errors=[{**field_error((parameter,), detail, "missing" if not name else "unknown"), "in": "query"}])
    return row.definition


def _check_files(data: FormPart, pdfs: list[bytes], options: dict, settings: Settings) -> int:
    """The number of items in the data, once the files are known to be readable; a problem otherwise."""
    profile = MappingProfile.model_validate(options["profile"]) if "profile" in options else None
    try:
        items = data_items(data.media_type, data.content, profile, settings)
        for pdf in pdfs:
            inspect_pdf(pdf, limits=batch_pdf_limits(settings))
    except TableError as exc:
        raise Problem(exc.status, exc.detail, slug=exc.slug, errors=exc.errors or None) from None
    except DocumentError as exc:
        raise document_problem(exc) from None
    if not items:
        raise Problem(422, "The batch holds no invoice.", slug="empty-batch")
    if len(items) > settings.max_batch_items:
        raise Problem(413, f"The batch holds {len(items)} invoices; at most {settings.max_batch_items} are accepted.",
                      slug="too-many-items")
    return len(items)


@router.get("/{batch_id}", response_model=BatchRead, summary="Progress and item outcomes of a batch",
            responses={401: _PROBLEM, 404: _PROBLEM})
async def read_batch(batch_id: uuid.UUID, request: Request, tenant: Tenant = Depends(authenticate),
                     status: Literal["accepted", "rejected", "duplicate", "unmatched"] | None = None,
                     offset: Annotated[int, Query(ge=0)] = 0,
                     limit: Annotated[int, Query(ge=0, le=10_000)] = 1000) -> dict:
    """The batch's progress and its items' outcomes (`status` filters them; `offset`/`limit` page them)."""
    async with request.app.state.ctx.sessions() as session:
        batch = await store.get_batch(session, tenant_id=tenant.id, batch_id=batch_id)
        if batch is None:
            raise Problem(404, f"No batch {batch_id} for this tenant.")
        items = await store.batch_items(session, tenant_id=tenant.id, batch_id=batch_id, status=status,
                                        offset=offset, limit=limit)
    return _batch_read(batch, items)


@router.get("", response_model=list[BatchSummary], summary="The tenant's latest batches", responses={401: _PROBLEM})
async def list_batches(request: Request, tenant: Tenant = Depends(authenticate),
                       limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
    """The latest batches first, without their items."""
    async with request.app.state.ctx.sessions() as session:
        return [_summary(batch) for batch in await store.latest_batches(session, tenant_id=tenant.id, limit=limit)]


def _summary(batch: BatchRow) -> dict:
    return {"batch_id": batch.id, "kind": batch.kind, "status": batch.status, "filename": batch.filename,
            "total_items": batch.total_items, "processed_items": batch.processed_items,
            "accepted_items": batch.accepted_items, "rejected_items": batch.rejected_items, "error": batch.error,
            "created_at": batch.created_at, "started_at": batch.started_at, "finished_at": batch.finished_at}


def _batch_read(batch: BatchRow, items: list[BatchItemRow]) -> dict:
    return {**_summary(batch),
            "items": [{"seq": item.seq, "status": item.status, "number": item.number, "invoice_id": item.invoice_id,
                       "location": item.location, "code": item.code, "detail": item.detail, "errors": item.errors,
                       "part": f"/v1/batches/{batch.id}/parts/{item.seq}" if item.status == "unmatched" else None}
                      for item in items]}


@router.get("/{batch_id}/parts/{seq}", response_class=Response, summary="Download a PDF part no invoice matched",
            responses={200: {"content": {"application/pdf": {}}}, 401: _PROBLEM, 404: _PROBLEM})
async def read_batch_part(batch_id: uuid.UUID, seq: int, request: Request,
                          tenant: Tenant = Depends(authenticate)) -> Response:
    async with request.app.state.ctx.sessions() as session:
        part = await store.batch_file(session, tenant_id=tenant.id, batch_id=batch_id, name=f"part-{seq}")
    if part is None:
        raise Problem(404, f"No unmatched part {seq} in batch {batch_id} of this tenant.")
    return Response(part.content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{batch_id}-part-{seq}.pdf"'})

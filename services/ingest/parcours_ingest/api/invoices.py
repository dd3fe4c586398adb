"""`/v1/invoices`: receive an invoice (validated, stored and announced in one transaction), read it back."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from parcours_contracts import InvoiceReceived, InvoiceSummary
from parcours_runtime.outbox import stage
from parcours_runtime.problems import PROBLEM_JSON, Problem, problem_response
from parcours_runtime.service import ServiceContext
from parcours_runtime.tenancy import Tenant, tenant_of
from parcours_ingest.api.documents import prepared_pdf
from parcours_ingest.api.formats import Submission, read_submission
from parcours_ingest.api.readers import authenticate_document_reader
from parcours_ingest.api.schemas import InvoiceAccepted, InvoiceRead
from parcours_ingest.domain.duplicates import DuplicateKey, duplicate_key
from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.store import invoices as store
from parcours_ingest.store.models import IdempotencyKeyRow
from parcours_ingest.store.receiving import IdempotencyRecord, Receipt, invoice_writer

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])

_PROBLEM = {"content": {PROBLEM_JSON: {}}}
_RECEIVE_ERRORS = {
    400: {**_PROBLEM, "description": "The body is not well-formed JSON, XML or multipart."},
    401: {**_PROBLEM, "description": "Missing, unknown or revoked API key."},
    409: {**_PROBLEM, "description": "The tenant already has this invoice (same number, seller and issue year): "
                                     "`existing_invoice` (and the Location header) links to it."},
    413: {**_PROBLEM, "description": "The body exceeds `max_body_bytes`."},
    415: {**_PROBLEM, "description": "The body is none of the accepted formats."},
    422: {**_PROBLEM, "description": "Schema, XSD (`xsd-invalid`), missing business terms (`missing-business-terms`), "
                                     "arithmetic (`arithmetic-error`), business rules (`business-rule-violation`), "
                                     "refused XML or PDF (`unsafe-xml`, `unsafe-pdf`, `pdf-without-invoice-data`…) or "
                                     "Idempotency-Key reuse (`idempotency-key-reuse`) errors. Each error's `pointer` is "
                                     "a JSON pointer (JSON bodies) or an XPath into the document sent (XML, PDF), "
                                     "with `field`, the JSON pointer in the invoice model."},
}

# Read by the routes themselves (`flow_headers`): declared as FastAPI parameters they cost the busiest route
# more than its validation does. Declared here for OpenAPI.
_FLOW_HEADERS = {
    "Idempotency-Key": (255, "Retry-safe key: the same key with the same body replays the first response."),
    "X-Correlation-ID": (128, "Ties the events of this invoice's flow together; defaults to the invoice id."),
}
FLOW_HEADER_PARAMETERS = [
    {"name": name, "in": "header", "required": False, "description": description,
     "schema": {"type": "string", "minLength": 1, "maxLength": max_length}}
    for name, (max_length, description) in _FLOW_HEADERS.items()]


def flow_headers(request: Request) -> tuple[str | None, str | None]:
    """(Idempotency-Key, X-Correlation-ID) of the request, each absent or 1 to its maximum length; 422 otherwise."""
    values, errors = [], []
    for name, (max_length, _) in _FLOW_HEADERS.items():
        value = request.headers.get(name)
        if value is not None and not 1 <= len(value) <= max_length:
            too_long = len(value) > max_length
            errors.append({"loc": ("header", name), "type": "string_too_long" if too_long else "string_too_short",
                           "msg": f"String should have at most {max_length} characters" if too_long
                           else "String should have at least 1 character"})
        values.append(value)
    if errors:
        raise RequestValidationError(errors)
    return values[0], values[1]


# The body is read by hand (size limit, Decimal numbers, several formats), so it is declared here for OpenAPI.
_XML_DOCUMENT = {"schema": {"type": "string", "description": "A UBL 2.1 Invoice/CreditNote or a UN/CEFACT CII "
                                                             "D16B CrossIndustryInvoice, UTF-8, without DTD."}}
_INVOICE_BODY = {"parameters": FLOW_HEADER_PARAMETERS, "requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Invoice"}},
    "application/xml": _XML_DOCUMENT,
    "text/xml": _XML_DOCUMENT,
    "application/pdf": {"schema": {"type": "string", "format": "binary",
                                   "description": "A Factur-X / ZUGFeRD PDF (its embedded CII XML is the data)."}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["invoice"], "properties": {
        "invoice": {"$ref": "#/components/schemas/Invoice"},
        "pdf": {"type": "string", "format": "binary", "description": "The invoice PDF, sent as a file."}}}},
}}}


@router.post("", status_code=202, response_model=InvoiceAccepted, responses=_RECEIVE_ERRORS,
             openapi_extra=_INVOICE_BODY, summary="Receive an invoice")
async def receive_invoice(request: Request) -> Response:
    """Check the invoice (JSON, UBL/CII XML, Factur-X PDF or multipart) adds up, store it and publish
    InvoiceReceived, all or nothing."""
    tenant = await tenant_of(request)
    idempotency_key, correlation_id = flow_headers(request)
    ctx: ServiceContext = request.app.state.ctx
    submission = await read_submission(request, settings=ctx.settings)
    invoice = submission.invoice
    if idempotency_key is not None:
        async with ctx.sessions() as session:
            earlier = await store.find_idempotency_key(session, tenant_id=tenant.id, key=idempotency_key)
        if earlier is not None:
            return replay(earlier, request_hash=submission.fingerprint)

    invoice_id = uuid.uuid4()
    correlation_id = correlation_id or str(invoice_id)
    accepted = InvoiceAccepted(invoice_id=invoice_id, number=invoice.number).model_dump(mode="json")
    documents = await store.keep_documents(ctx.extras["blobs"], tenant_id=tenant.id, invoice=invoice,
                                           pdf=submission.pdf, source=submission.source)
    rows = store.invoice_rows(tenant_id=tenant.id, invoice_id=invoice_id, invoice=invoice,
                              correlation_id=correlation_id, documents=documents)
    event = InvoiceReceived(tenant_id=tenant.id, invoice_id=invoice_id, correlation_id=correlation_id,
                            invoice=summarise(invoice, has_pdf=rows.has_pdf, source_format=rows.invoice["source_format"]))
    remembered = (IdempotencyRecord(key=idempotency_key, request_hash=submission.fingerprint, status=202,
                                    response_json=accepted) if idempotency_key is not None else None)
    stored = await invoice_writer(ctx).store(Receipt(tenant_id=tenant.id, rows=rows, event=stage(event),
                                                     idempotency=remembered))
    if not stored:
        answer = await answer_conflict(request, tenant=tenant, submission=submission, idempotency_key=idempotency_key)
        if answer is None:
            raise RuntimeError(f"invoice {invoice_id}: refused by a unique constraint, but no conflicting row found")
        return answer
    return JSONResponse(accepted, status_code=202)


@router.get("/{invoice_id}", response_model=InvoiceRead, summary="Read a received invoice",
            response_model_exclude_unset=True,  # optional EN 16931 parts the invoice did not have stay out
            responses={401: _PROBLEM, 404: {**_PROBLEM, "description": "No such invoice for this tenant."}})
async def read_invoice(invoice_id: uuid.UUID, request: Request,
                       tenant: Tenant = Depends(authenticate_document_reader)) -> dict:
    """The invoice as received (without its PDF), with when it was received."""
    async with request.app.state.ctx.sessions() as session:
        row = await store.get_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id)
    if row is None:
        raise Problem(404, f"No invoice {invoice_id} for this tenant.")
    return {**row.document, "invoice_id": row.id, "status": "received", "received_at": row.received_at, "has_pdf": row.has_pdf,
            "source_format": row.source_format}


@router.get("/{invoice_id}/pdf", response_class=Response, summary="Download the invoice PDF",
            responses={200: {"content": {"application/pdf": {}}}, 401: _PROBLEM,
                       404: {**_PROBLEM, "description": "No such invoice for this tenant, or it came without a PDF."}})
async def read_invoice_pdf(invoice_id: uuid.UUID, request: Request,
                          tenant: Tenant = Depends(authenticate_document_reader)) -> Response:
    """The PDF sent with the invoice; for an invoice sent as data, the Factur-X PDF Parcours prepares
    (rendered, CGV inserted, annexes merged, CII embedded)."""
    async with request.app.state.ctx.sessions() as session:
        pdf = await store.get_pdf(session, request.app.state.ctx.extras["blobs"], tenant_id=tenant.id,
                                  invoice_id=invoice_id)
    if pdf is None:
        pdf = await prepared_pdf(request, tenant_id=tenant.id, invoice_id=invoice_id)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{invoice_id}.pdf"'})


@router.get("/{invoice_id}/source", response_class=Response, summary="Download the document the invoice was read from",
            responses={200: {"content": {"application/xml": {}}}, 401: _PROBLEM,
                       404: {**_PROBLEM, "description": "No such invoice for this tenant, or it was sent as JSON."}})
async def read_invoice_source(invoice_id: uuid.UUID, request: Request,
                             tenant: Tenant = Depends(authenticate_document_reader)) -> Response:
    """The UBL or CII XML exactly as received (for a Factur-X PDF, its embedded XML)."""
    async with request.app.state.ctx.sessions() as session:
        source = await store.get_source(session, request.app.state.ctx.extras["blobs"], tenant_id=tenant.id,
                                        invoice_id=invoice_id)
    if source is None:
        raise Problem(404, f"No source document for invoice {invoice_id} of this tenant.")
    return Response(source.content, media_type=source.media_type, headers={"ETag": f'"{source.sha256}"'})


def summarise(invoice: Invoice, *, has_pdf: bool | None = None, source_format: str | None = None) -> InvoiceSummary:
    """What downstream services need to know of the invoice."""
    return InvoiceSummary(
        number=invoice.number, issue_date=invoice.issue_date, due_date=invoice.due_date, currency=invoice.currency,
        total_excl_tax=invoice.totals.total_excl_tax, total_tax=invoice.totals.total_tax,
        total_incl_tax=invoice.totals.total_incl_tax, seller_name=invoice.seller.name, buyer_name=invoice.buyer.name,
        customer_ref=invoice.buyer.customer_ref, has_pdf=invoice.pdf is not None if has_pdf is None else has_pdf,
        type_code=invoice.type_code, source_format=source_format,
    )


def replay(earlier: IdempotencyKeyRow, *, request_hash: str) -> Response:
    """The first response to this Idempotency-Key, if this is the same request again."""
    if earlier.request_hash != request_hash:
        raise Problem(422, "This Idempotency-Key was already used with a different body.",
                      slug="idempotency-key-reuse", title="Idempotency-Key reused")
    return JSONResponse(earlier.response_json, status_code=earlier.status, headers={"Idempotent-Replayed": "true"})


async def answer_conflict(request: Request, *, tenant: Tenant, submission: Submission,
                          idempotency_key: str | None) -> Response | None:
    """A concurrent or earlier request won a unique constraint: replay it, or say which conflict it is
    (None if the conflicting row cannot be found)."""
    ctx: ServiceContext = request.app.state.ctx
    key = duplicate_key(submission.invoice)
    async with ctx.sessions() as session:
        earlier = (await store.find_idempotency_key(session, tenant_id=tenant.id, key=idempotency_key)
                   if idempotency_key is not None else None)
        if earlier is not None:
            return replay(earlier, request_hash=submission.fingerprint)
        existing = await store.invoice_with_key(session, tenant_id=tenant.id, key=key)
    if existing is None:
        return None
    return problem_response(request, duplicate_problem(key, existing, pointer=submission.number_pointer))


def duplicate_problem(key: DuplicateKey, existing: uuid.UUID, *, pointer: str) -> Problem:
    """409: the tenant already has this invoice (same number, seller and issue year); links to it."""
    link = f"/v1/invoices/{existing}"
    return Problem(409, f"The {key.describe()} was already received for this tenant: {link}.",
                   slug="duplicate-invoice-number", title="Duplicate invoice number",
                   errors=[{"pointer": pointer, "detail": "already received", "code": "duplicate",
                            "existing_invoice": link}],
                   headers={"Location": link}, extensions={"existing_invoice_id": str(existing), "existing_invoice": link})

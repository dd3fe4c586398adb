"""`/v1/invoices`: receive an invoice (validated, stored and announced in one transaction), read it back."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from parcours_contracts import InvoiceReceived, InvoiceSummary
from parcours_runtime.problems import PROBLEM_JSON, Problem, field_error
from parcours_runtime.service import ServiceContext
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork
from parcours_ingest.api.body import read_json_body
from parcours_ingest.api.schemas import InvoiceAccepted, InvoiceRead
from parcours_ingest.domain.arithmetic import check_arithmetic
from parcours_ingest.domain.idempotency import request_fingerprint
from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.store import invoices as store
from parcours_ingest.store.models import IdempotencyKeyRow

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])

_PROBLEM = {"content": {PROBLEM_JSON: {}}}
_RECEIVE_ERRORS = {
    400: {**_PROBLEM, "description": "The body is not valid JSON."},
    401: {**_PROBLEM, "description": "Missing, unknown or revoked API key."},
    409: {**_PROBLEM, "description": "The tenant already has an invoice with this number."},
    413: {**_PROBLEM, "description": "The body exceeds `max_body_bytes`."},
    415: {**_PROBLEM, "description": "The body is not JSON."},
    422: {**_PROBLEM, "description": "Schema, arithmetic (slug `arithmetic-error`) or Idempotency-Key reuse "
                                     "(slug `idempotency-key-reuse`) errors, each field at its JSON pointer."},
}
# The body is read by hand (size limit, Decimal numbers), so its schema is declared here for OpenAPI.
_INVOICE_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Invoice"}}}}}

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255,
    description="Retry-safe key: the same key with the same body replays the first response.")]
CorrelationId = Annotated[str | None, Header(
    alias="X-Correlation-ID", min_length=1, max_length=128,
    description="Ties the events of this invoice's flow together; defaults to the invoice id.")]


@router.post("", status_code=202, response_model=InvoiceAccepted, responses=_RECEIVE_ERRORS,
             openapi_extra=_INVOICE_BODY, summary="Receive an invoice")
async def receive_invoice(request: Request, tenant: Tenant = Depends(authenticate),
                          idempotency_key: IdempotencyKey = None, correlation_id: CorrelationId = None) -> Response:
    """Check the invoice adds up, store it and publish InvoiceReceived, all or nothing."""
    ctx: ServiceContext = request.app.state.ctx
    invoice = parse_invoice(await read_json_body(request, max_bytes=ctx.settings.max_body_bytes))
    request_hash = request_fingerprint(invoice.model_dump(mode="json"))
    if idempotency_key is not None:
        async with ctx.sessions() as session:
            earlier = await store.find_idempotency_key(session, tenant_id=tenant.id, key=idempotency_key)
        if earlier is not None:
            return replay(earlier, request_hash=request_hash)

    invoice_id = uuid.uuid4()
    correlation_id = correlation_id or str(invoice_id)
    accepted = InvoiceAccepted(invoice_id=invoice_id, number=invoice.number).model_dump(mode="json")
    try:
        async with UnitOfWork(ctx.sessions) as uow:
            await store.add_invoice(uow.session, tenant_id=tenant.id, invoice_id=invoice_id, invoice=invoice,
                                    correlation_id=correlation_id)
            if idempotency_key is not None:
                await store.add_idempotency_key(uow.session, tenant_id=tenant.id, key=idempotency_key,
                                                request_hash=request_hash, status=202, response_json=accepted)
            uow.publish(InvoiceReceived(tenant_id=tenant.id, invoice_id=invoice_id,
                                        correlation_id=correlation_id, invoice=summarise(invoice)))
            await uow.commit()
    except IntegrityError:
        answer = await answer_conflict(ctx, tenant=tenant, invoice=invoice, idempotency_key=idempotency_key,
                                       request_hash=request_hash)
        if answer is None:
            raise
        return answer
    return JSONResponse(accepted, status_code=202)


@router.get("/{invoice_id}", response_model=InvoiceRead, summary="Read a received invoice",
            responses={401: _PROBLEM, 404: {**_PROBLEM, "description": "No such invoice for this tenant."}})
async def read_invoice(invoice_id: uuid.UUID, request: Request, tenant: Tenant = Depends(authenticate)) -> dict:
    """The invoice as received (without its PDF), with when it was received."""
    async with request.app.state.ctx.sessions() as session:
        row = await store.get_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id)
    if row is None:
        raise Problem(404, f"No invoice {invoice_id} for this tenant.")
    return {**row.document, "invoice_id": row.id, "received_at": row.received_at, "has_pdf": row.has_pdf}


@router.get("/{invoice_id}/pdf", response_class=Response, summary="Download the invoice PDF",
            responses={200: {"content": {"application/pdf": {}}}, 401: _PROBLEM,
                       404: {**_PROBLEM, "description": "No such invoice for this tenant, or it came without a PDF."}})
async def read_invoice_pdf(invoice_id: uuid.UUID, request: Request, tenant: Tenant = Depends(authenticate)) -> Response:
    """The PDF sent with the invoice."""
    async with request.app.state.ctx.sessions() as session:
        pdf = await store.get_pdf(session, tenant_id=tenant.id, invoice_id=invoice_id)
    if pdf is None:
        raise Problem(404, f"No PDF for invoice {invoice_id} of this tenant.")
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{invoice_id}.pdf"'})


def parse_invoice(payload: Any) -> Invoice:
    """The validated invoice; 422 listing every schema error, or else every arithmetic mismatch."""
    try:
        invoice = Invoice.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
    mismatches = check_arithmetic(invoice)
    if mismatches:
        raise Problem(422, "The invoice amounts do not add up.", slug="arithmetic-error", errors=[
            {**field_error(m.path, m.detail, "arithmetic-mismatch"), "expected": str(m.expected), "given": str(m.given)}
            for m in mismatches
        ])
    return invoice


def summarise(invoice: Invoice) -> InvoiceSummary:
    """What downstream services need to know of the invoice."""
    return InvoiceSummary(
        number=invoice.number, issue_date=invoice.issue_date, due_date=invoice.due_date, currency=invoice.currency,
        total_excl_tax=invoice.totals.total_excl_tax, total_tax=invoice.totals.total_tax,
        total_incl_tax=invoice.totals.total_incl_tax, seller_name=invoice.seller.name, buyer_name=invoice.buyer.name,
        customer_ref=invoice.buyer.customer_ref, has_pdf=invoice.pdf is not None,
    )


def replay(earlier: IdempotencyKeyRow, *, request_hash: str) -> Response:
    """The first response to this Idempotency-Key, if this is the same request again."""
    if earlier.request_hash != request_hash:
        raise Problem(422, "This Idempotency-Key was already used with a different body.",
                      slug="idempotency-key-reuse", title="Idempotency-Key reused")
    return JSONResponse(earlier.response_json, status_code=earlier.status, headers={"Idempotent-Replayed": "true"})


async def answer_conflict(ctx: ServiceContext, *, tenant: Tenant, invoice: Invoice, idempotency_key: str | None,
                          request_hash: str) -> Response | None:
    """A concurrent or earlier request won a unique constraint: replay it, or say which conflict it is
    (None if the conflicting row cannot be found)."""
    async with ctx.sessions() as session:
        earlier = (await store.find_idempotency_key(session, tenant_id=tenant.id, key=idempotency_key)
                   if idempotency_key is not None else None)
        if earlier is not None:
            return replay(earlier, request_hash=request_hash)
        if await store.number_taken(session, tenant_id=tenant.id, number=invoice.number):
            raise Problem(409, f"Invoice number {invoice.number!r} was already received for this tenant.",
                          slug="duplicate-invoice-number", title="Duplicate invoice number")
    return None

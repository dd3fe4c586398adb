"""Bank statements (ISO 20022 camt.053): `POST /v1/payments/camt053` matches each booked credit
to the tenant's invoices, records the payments (211/212 once paid, PaymentRecorded source
`camt053`, which dunning stops on) and reports every line, matched or not."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from parcours_runtime.problems import Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.api.acks import read_body
from parcours_tracker.domain.camt053 import StatementError, parse_statement
from parcours_tracker.store.statements import LineOutcome, import_statement

router = APIRouter(tags=["recipient actions and payments"])
XML_TYPES = ("application/xml", "text/xml")


class StatementLineReport(BaseModel):
    position: str = Field(description="<statement>/<entry>/<transaction> in the file, 1-based.")
    outcome: Literal["recorded", "duplicate", "unmatched", "ignored"]
    reason: str | None = Field(description="Why a line is unmatched or ignored.")
    amount: Decimal
    currency: str
    booked_on: date | None
    debtor: str | None
    bank_reference: str | None
    quoted: list[str] = Field(description="What the line quotes: creditor references, free text, end-to-end id.")
    invoice_id: UUID | None
    number: str | None
    matched_by: Literal["reference", "number", "amount"] | None
    payment_id: str | None
    open_amount: Decimal | None = Field(description="What the invoice still owes after this line.")
    fully_paid: bool | None
    status: str | None = Field(description="The invoice's lifecycle status after this line.")
    code: int | None


class StatementReport(BaseModel):
    message_id: str
    statements: list[str]
    account: str | None
    lines: int
    recorded: int
    duplicates: int
    unmatched: int
    ignored: int
    items: list[StatementLineReport]


def _item(outcome: LineOutcome) -> StatementLineReport:
    line, invoice, payment = outcome.line, outcome.invoice, outcome.payment
    quoted = [*line.creditor_references, *line.remittance]
    if line.end_to_end_id:
        quoted.append(line.end_to_end_id)
    return StatementLineReport(
        position=line.position, outcome=outcome.outcome, reason=outcome.reason, amount=line.amount,
        currency=line.currency, booked_on=line.booked_on, debtor=line.debtor, bank_reference=line.bank_reference,
        quoted=quoted, invoice_id=invoice.invoice_id if invoice else None, number=invoice.number if invoice else None,
        matched_by=outcome.matched_by, payment_id=payment.payment_id if payment else None,
        open_amount=payment.open_amount if payment else None, fully_paid=payment.fully_paid if payment else None,
        status=payment.status if payment else (invoice.status if invoice else None),
        code=payment.code if payment else (invoice.code if invoice else None))


@router.post(
    "/v1/payments/camt053", response_model=StatementReport, summary="Import a bank statement (ISO 20022 camt.053)",
    openapi_extra={"requestBody": {"required": True, "content": {t: {"schema": {"type": "string"}} for t in XML_TYPES}}},
    responses={400: {"description": "Not well-formed XML; nothing changed"},
               413: {"description": "Statement too large"},
               415: {"description": "Not sent as application/xml"},
               422: {"description": "Not a camt.053 statement, or refused XML (DTD…); nothing changed"}})
async def import_camt053(request: Request, tenant: Tenant = Depends(authenticate)) -> StatementReport:
    """Every booked credit matched by reference, invoice number or amount and recorded as a payment
    (partial ones too); unmatched, duplicate and ignored lines are reported and change nothing.
    Importing the same statement again records nothing twice."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in XML_TYPES:
        raise Problem(415, "Send the camt.053 statement as application/xml.", slug="unsupported-media-type")
    ctx = request.app.state.ctx
    raw = await read_body(request, ctx.settings.statement_max_bytes, "A statement")
    try:
        statement = parse_statement(raw)
    except StatementError as exc:
        errors = [field_error([p for p in exc.pointer.split("/") if p], exc.detail, exc.slug)] if exc.pointer else None
        raise Problem(exc.status, exc.detail, slug=exc.slug, errors=errors) from None
    async with UnitOfWork(ctx.sessions) as uow:
        outcomes = await import_statement(uow, ctx.extras["tracking"], tenant_id=tenant.id, statement=statement,
                                          now=datetime.now(timezone.utc))
        await uow.commit()
    items = [_item(outcome) for outcome in outcomes]
    count = lambda what: sum(item.outcome == what for item in items)  # noqa: E731
    return StatementReport(message_id=statement.message_id, statements=statement.statements,
                           account=statement.account, lines=len(statement.lines), recorded=count("recorded"),
                           duplicates=count("duplicate"), unmatched=count("unmatched"), ignored=count("ignored"),
                           items=items)

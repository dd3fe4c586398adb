"""What the recipient does with an invoice (approve, dispute, refuse, promise…) and the payments
the ERP reports: both become facts of the journey and lifecycle transitions. The portal will
call the same routes."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from parcours_runtime.problems import Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.actions import action_error
from parcours_tracker.domain.payments import PaymentRefused, PaymentReport
from parcours_tracker.domain.status import Projection
from parcours_tracker.store import payments
from parcours_tracker.store.actions import anomaly_of, record_action
from parcours_tracker.store.models import Invoice

router = APIRouter(tags=["recipient actions and payments"])

Money = Field(gt=0, max_digits=18, decimal_places=2)


class RecipientEventBody(BaseModel):
    """One thing the recipient did or said about the invoice."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal[journal.RECIPIENT_ACTIONS]  # type: ignore[valid-type]
    reason: str | None = Field(default=None, min_length=1, max_length=2000,
                               description="Required for disputed, suspended and refused.")
    promised_on: date | None = Field(default=None, description="promise_to_pay only (required there).")
    amount: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=2,
                                   description="promise_to_pay and partially_approved only.")


class PaymentBody(BaseModel):
    """A payment of (part of) the invoice, as the ERP knows it."""

    model_config = ConfigDict(extra="forbid")

    payment_id: str = Field(min_length=1, max_length=128, description="The tenant's id; a retry reuses it.")
    amount: Decimal = Money
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="Default: the invoice's currency.")
    paid_on: date
    reference: str | None = Field(default=None, max_length=200)
    status: Literal["transmitted", "received"] = Field(
        default="received", description="transmitted: the payer sent it (211 once fully paid); received: it is "
                                        "on the account (212 once fully paid). A transmitted payment can later be "
                                        "confirmed as received with the same payment_id and amount.")


class Outcome(BaseModel):
    event_id: UUID
    applied: bool = Field(description="False when the lifecycle refused the transition (an anomaly, journaled).")
    status: str
    code: int | None
    anomaly: dict | None = None


def _invalid(path: str, detail: str) -> Problem:
    return Problem(422, "The request does not match the expected schema.", errors=[field_error([path], detail)])


def _check_event(body: RecipientEventBody) -> None:
    error = action_error(body.kind, reason=body.reason, promised_on=body.promised_on, amount=body.amount)
    if error is not None:
        raise _invalid(*error)


async def _locked_invoice(uow: UnitOfWork, tenant: Tenant, invoice_id: UUID) -> Invoice:
    invoice = (await uow.session.execute(
        select(Invoice).where(Invoice.tenant_id == tenant.id, Invoice.invoice_id == invoice_id).with_for_update()
    )).scalar_one_or_none()
    if invoice is None:
        raise Problem(404, "No such invoice.")
    return invoice


def _outcome(entry: journal.Entry, projection: Projection) -> Outcome:
    anomaly = anomaly_of(entry, projection)
    return Outcome(event_id=entry.event_id, applied=anomaly is None, status=projection.status,
                   code=projection.code, anomaly=anomaly)


@router.post("/v1/invoices/{invoice_id}/events", status_code=202, response_model=Outcome,
             summary="Record a recipient action (approval, dispute, refusal, promise to pay…)",
             responses={404: {"description": "No such invoice"}, 422: {"description": "Bad input; nothing changed"}})
async def post_recipient_event(invoice_id: UUID, body: RecipientEventBody, request: Request,
                               tenant: Tenant = Depends(authenticate)) -> Outcome:
    """A lifecycle transition (204-210); a transition that makes no sense is journaled as an anomaly, not applied."""
    _check_event(body)
    ctx = request.app.state.ctx
    now = datetime.now(timezone.utc)
    async with UnitOfWork(ctx.sessions) as uow:
        invoice = await _locked_invoice(uow, tenant, invoice_id)
        entry, projection = await record_action(
            uow, ctx.extras["tracking"], tenant_id=tenant.id, invoice_id=invoice_id,
            correlation_id=invoice.correlation_id, event_id=uuid.uuid4(), kind=body.kind, occurred_at=now,
            detail=body.model_dump(mode="json", exclude={"kind"}, exclude_none=True), source="api",
            promised_on=body.promised_on, amount=body.amount)
        outcome = _outcome(entry, projection)
        await uow.commit()
    return outcome


class PaymentOutcome(Outcome):
    payment_id: str
    open_amount: Decimal
    fully_paid: bool
    duplicate: bool = False


@router.post("/v1/invoices/{invoice_id}/payments", status_code=201, response_model=PaymentOutcome,
             summary="Record a payment (partial or full) of the invoice",
             responses={200: {"description": "This payment_id was already recorded with the same body"},
                        404: {"description": "No such invoice"},
                        409: {"description": "payment_id reused with another body, or the invoice amount is unknown"},
                        422: {"description": "Bad input (amount over the open amount, other currency); nothing changed"}})
async def post_payment(invoice_id: UUID, body: PaymentBody, request: Request,
                       tenant: Tenant = Depends(authenticate)) -> JSONResponse:
    """PaymentRecorded with the open amount; once fully paid, the lifecycle moves to 211 (transmitted) or 212."""
    ctx = request.app.state.ctx
    report = PaymentReport(payment_id=body.payment_id, amount=body.amount, paid_on=body.paid_on,
                           currency=body.currency, reference=body.reference, status=body.status)
    async with UnitOfWork(ctx.sessions) as uow:
        invoice = await _locked_invoice(uow, tenant, invoice_id)
        try:
            done = await payments.record_payment(uow, ctx.extras["tracking"], invoice=invoice, report=report,
                                                 source="api", now=datetime.now(timezone.utc))
        except PaymentRefused as refused:
            raise refusal_problem(refused) from None
        await uow.commit()
    applied = Outcome(event_id=done.event_id, applied=True, status=done.status, code=done.code) if done.duplicate \
        else _outcome(done.entry, done.projection)
    outcome = PaymentOutcome(**applied.model_dump(), payment_id=done.payment_id, open_amount=done.open_amount,
                             fully_paid=done.fully_paid, duplicate=done.duplicate)
    return JSONResponse(outcome.model_dump(mode="json"), status_code=200 if done.duplicate else 201)


def refusal_problem(refused: PaymentRefused) -> Problem:
    """The problem+json of a refused payment report."""
    if refused.field is not None:
        return _invalid(refused.field, refused.detail)
    return Problem(refused.status, refused.detail, slug=refused.slug)

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

from parcours_contracts import PaymentRecorded
from parcours_runtime.problems import Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.actions import action_error
from parcours_tracker.domain.status import Projection
from parcours_tracker.store import journeys, payments
from parcours_tracker.store.actions import anomaly_of, record_action
from parcours_tracker.store.models import Invoice, Payment

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


def _same(existing: Payment, body: PaymentBody, currency: str) -> bool:
    return (existing.amount, existing.currency, existing.paid_on, existing.reference, existing.status) == \
        (body.amount, currency, body.paid_on, body.reference, body.status)


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
    now = datetime.now(timezone.utc)
    async with UnitOfWork(ctx.sessions) as uow:
        invoice = await _locked_invoice(uow, tenant, invoice_id)
        if not invoice.summary:
            raise Problem(409, "The invoice's amount is not known to the tracker yet; retry shortly.",
                          slug="invoice-amount-unknown")
        total, currency = Decimal(invoice.summary["total_incl_tax"]), invoice.summary["currency"]
        if body.currency is not None and body.currency != currency:
            raise _invalid("currency", f"the invoice is in {currency}")
        paid, received = await payments.totals(uow.session, tenant_id=tenant.id, invoice_id=invoice_id)
        existing = await payments.find(uow.session, tenant_id=tenant.id, payment_id=body.payment_id)
        if existing is not None:
            if existing.invoice_id == invoice_id and _same(existing, body, currency):
                return JSONResponse(PaymentOutcome(
                    event_id=existing.event_id, applied=True, status=invoice.status, code=invoice.code,
                    payment_id=existing.payment_id, open_amount=total - paid, fully_paid=paid >= total,
                    duplicate=True).model_dump(mode="json"), status_code=200)
            confirms = (existing.invoice_id == invoice_id and existing.status == "transmitted"
                        and body.status == "received" and (existing.amount, existing.paid_on) == (body.amount,
                                                                                                  body.paid_on))
            if not confirms:
                raise Problem(409, f"payment_id {body.payment_id!r} was already recorded with another body.",
                              slug="payment-id-reused")
            existing.status, received = "received", received + body.amount
        else:
            if body.amount > total - paid:
                raise _invalid("amount", f"more than the open amount ({total - paid} {currency})")
            paid += body.amount
            received += body.amount if body.status == "received" else 0
        open_amount, fully_paid = total - paid, paid >= total
        entry = journal.Entry(event_id=uuid.uuid4(), kind=journal.PAYMENT, occurred_at=now, detail={
            "payment_id": body.payment_id, "amount": str(body.amount), "currency": currency,
            "paid_on": body.paid_on.isoformat(), "status": body.status, "reference": body.reference,
            "open_amount": str(open_amount), "fully_paid": fully_paid, "all_received": received >= total,
            "source": "api"})
        if existing is None:
            uow.session.add(Payment(tenant_id=tenant.id, payment_id=body.payment_id, invoice_id=invoice_id,
                                    amount=body.amount, currency=currency, paid_on=body.paid_on, status=body.status,
                                    reference=body.reference, event_id=entry.event_id))
        else:
            existing.event_id = entry.event_id
        projection = await journeys.record(uow, ctx.extras["tracking"], tenant_id=tenant.id, invoice_id=invoice_id,
                                           correlation_id=invoice.correlation_id, entry=entry)
        uow.publish(PaymentRecorded(
            event_id=entry.event_id, tenant_id=tenant.id, invoice_id=invoice_id, correlation_id=invoice.correlation_id,
            occurred_at=now, payment_id=body.payment_id, amount=body.amount, currency=currency, paid_on=body.paid_on,
            open_amount=open_amount, fully_paid=fully_paid, source="api", reference=body.reference,
            status=body.status))
        await uow.commit()
    outcome = PaymentOutcome(**_outcome(entry, projection).model_dump(), payment_id=body.payment_id,
                             open_amount=open_amount, fully_paid=fully_paid)
    return JSONResponse(outcome.model_dump(mode="json"), status_code=201)

"""Bank statement import: each booked credit of a camt.053 statement matched to the tenant's
invoices and recorded as a payment (source `camt053`), in one transaction per statement.

Matching, for each line: first what it quotes (creditor reference, end-to-end id, words of the
free text) against the invoices' number keys; quoting one invoice pays it (partially when the
amount is less than its open amount); quoting several pays them all when the amount is their
total open amount. A line that quotes no invoice pays the one open invoice whose open amount is
exactly its amount (the debtor's name breaks ties). Anything else is reported unmatched and
changes nothing. A line already imported (same bank reference) is reported as a duplicate; one that
confirmed a payment the ERP reported as transmitted (211) is remembered on that payment, so that
its re-import is reported as that payment's line, not as a new one nor unmatched."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import Numeric, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain.camt053 import Line, Statement
from parcours_tracker.domain.payments import TRANSMITTED, PaymentRefused, PaymentReport, number_key
from parcours_tracker.domain.status import L
from parcours_tracker.store import payments
from parcours_tracker.store.journeys import Tracking
from parcours_tracker.store.models import Invoice, Payment

SOURCE = "camt053"
SETTLED = (L.ENCAISSEE.name, L.PAIEMENT_TRANSMIS.name, L.REFUSEE.name, L.REJETEE.name)
_MAX_CANDIDATES = 20


@dataclass(frozen=True)
class LineOutcome:
    """What the import did with one statement line (a line paying several invoices has one per invoice)."""

    line: Line
    outcome: Literal["recorded", "duplicate", "unmatched", "ignored"]
    reason: str | None = None
    invoice: Invoice | None = None
    matched_by: Literal["reference", "number", "amount"] | None = None
    payment: payments.Recorded | None = None


def payment_id_of(statement: Statement, line: Line) -> str:
    """A stable id for a line, so that importing the same statement again records nothing twice."""
    where = line.bank_reference or f"{statement.message_id}:{line.position}"
    return f"{SOURCE}:{statement.account or '-'}:{where}"[:128]


def _total() -> object:
    return Invoice.summary["total_incl_tax"].astext.cast(Numeric(18, 2))


def _paid() -> object:
    return select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.tenant_id == Invoice.tenant_id, Payment.invoice_id == Invoice.invoice_id).scalar_subquery()


async def _by_keys(session: AsyncSession, tenant_id: str, keys: list[str]) -> list[tuple[Invoice, Decimal]]:
    """Invoices whose number the line quotes, with their open amounts, in the order of the keys."""
    if not keys:
        return []
    rows = (await session.execute(
        select(Invoice, _total() - _paid())
        .where(Invoice.tenant_id == tenant_id, Invoice.number_key.in_(keys), Invoice.summary.is_not(None))
        .order_by(Invoice.seq).limit(_MAX_CANDIDATES).with_for_update(of=Invoice)
    )).all()
    rank = {key: i for i, key in enumerate(keys)}
    return sorted(((row[0], Decimal(row[1])) for row in rows), key=lambda pair: rank[pair[0].number_key])


async def _by_amount(session: AsyncSession, tenant_id: str, line: Line) -> list[Invoice]:
    """Open invoices in the line's currency whose open amount is exactly its amount."""
    return list((await session.execute(
        select(Invoice)
        .where(Invoice.tenant_id == tenant_id, Invoice.summary["currency"].astext == line.currency,
               Invoice.status.not_in(SETTLED), _total() - _paid() == line.amount)
        .order_by(Invoice.seq).limit(_MAX_CANDIDATES).with_for_update(of=Invoice)
    )).scalars())


async def _transmitted(session: AsyncSession, invoice: Invoice, amount: Decimal) -> Payment | None:
    """A payment the ERP reported as transmitted for this amount: the statement line confirms it."""
    return (await session.execute(
        select(Payment).where(Payment.tenant_id == invoice.tenant_id, Payment.invoice_id == invoice.invoice_id,
                              Payment.status == TRANSMITTED, Payment.amount == amount).limit(1)
    )).scalar_one_or_none()


async def _confirmed_by(session: AsyncSession, tenant_id: str, line_id: str) -> Payment | None:
    """The transmitted payment this statement line confirmed when it was imported before, if it did."""
    return (await session.execute(
        select(Payment).where(Payment.tenant_id == tenant_id, Payment.confirmed_by == line_id)
    )).scalar_one_or_none()


async def _confirmed_before(session: AsyncSession, line: Line, confirmed: Payment) -> LineOutcome:
    """A re-imported line that confirmed a transmitted payment: matched to that payment, nothing recorded again."""
    invoice = await session.get(Invoice, (confirmed.tenant_id, confirmed.invoice_id))
    total = Decimal((invoice.summary or {}).get("total_incl_tax", 0))
    paid, _ = await payments.totals(session, tenant_id=confirmed.tenant_id, invoice_id=confirmed.invoice_id)
    done = payments.Recorded(event_id=confirmed.event_id, payment_id=confirmed.payment_id, open_amount=total - paid,
                             fully_paid=paid >= total, duplicate=True, status=invoice.status, code=invoice.code)
    matched_by = _matched_by(line, invoice) if invoice.number_key in line.quoted_keys() else "amount"
    return LineOutcome(line, "duplicate", invoice=invoice, matched_by=matched_by, payment=done,
                       reason=f"this line was imported before: it confirmed payment {confirmed.payment_id}")


def _reference(line: Line) -> str | None:
    quoted = [*line.creditor_references, *line.remittance, line.end_to_end_id or ""]
    return next((text for text in quoted if text), None)


def _matched_by(line: Line, invoice: Invoice) -> Literal["reference", "number"]:
    return "reference" if invoice.number_key in line.reference_keys() else "number"


async def _pay(uow: UnitOfWork, tracking: Tracking, statement: Statement, line: Line, invoice: Invoice,
               amount: Decimal, matched_by: str, now: datetime, *, payment_id: str | None = None) -> LineOutcome:
    report = PaymentReport(payment_id=payment_id or payment_id_of(statement, line), amount=amount,
                           paid_on=line.booked_on or now.date(), currency=line.currency,
                           reference=(_reference(line) or "")[:200] or None)
    confirmed = await _transmitted(uow.session, invoice, amount) if payment_id is None else None
    if confirmed is not None:  # the ERP's transmitted payment, now on the account
        report = replace(report, payment_id=confirmed.payment_id, paid_on=confirmed.paid_on,
                         reference=confirmed.reference, currency=None)
    try:
        done = await payments.record_payment(uow, tracking, invoice=invoice, report=report, source=SOURCE, now=now)
    except PaymentRefused as refused:
        return LineOutcome(line, "unmatched", reason=refused.detail, invoice=invoice, matched_by=matched_by)
    if confirmed is not None:  # its id is the ERP's: remember the line, so that a re-import knows it
        confirmed.confirmed_by = payment_id_of(statement, line)
    return LineOutcome(line, "duplicate" if done.duplicate else "recorded", invoice=invoice, matched_by=matched_by,
                       payment=done)


async def _import_line(uow: UnitOfWork, tracking: Tracking, tenant_id: str, statement: Statement, line: Line,
                       now: datetime) -> list[LineOutcome]:
    if not line.payment:
        why = "a debit" if not line.credit else "a reversal" if line.reversal else "not booked"
        return [LineOutcome(line, "ignored", reason=f"{why}: not a payment received")]
    earlier = await payments.find(uow.session, tenant_id=tenant_id, payment_id=payment_id_of(statement, line))
    if earlier is not None:
        invoice = await uow.session.get(Invoice, (tenant_id, earlier.invoice_id))
        return [LineOutcome(line, "duplicate", reason="this line was imported before", invoice=invoice)]
    confirmed = await _confirmed_by(uow.session, tenant_id, payment_id_of(statement, line))
    if confirmed is not None:
        return [await _confirmed_before(uow.session, line, confirmed)]
    quoted = await _by_keys(uow.session, tenant_id, line.quoted_keys())
    if len(quoted) == 1:
        invoice, open_amount = quoted[0]
        if line.amount > open_amount and await _transmitted(uow.session, invoice, line.amount) is None:
            return [LineOutcome(line, "unmatched", invoice=invoice, matched_by=_matched_by(line, invoice),
                                reason=f"{line.amount} is more than the open amount of invoice {invoice.number} "
                                       f"({open_amount})")]
        return [await _pay(uow, tracking, statement, line, invoice, line.amount, _matched_by(line, invoice), now)]
    if quoted:
        numbers = ", ".join(invoice.number or "?" for invoice, _ in quoted)
        if sum(open_amount for _, open_amount in quoted) != line.amount or any(o <= 0 for _, o in quoted):
            return [LineOutcome(line, "unmatched", reason=f"quotes invoices {numbers} and {line.amount} is not "
                                                          "their total open amount")]
        return [await _pay(uow, tracking, statement, line, invoice, open_amount, _matched_by(line, invoice), now,
                           payment_id=f"{payment_id_of(statement, line)}:{number_key(invoice.number or '')}"[:128])
                for invoice, open_amount in quoted]
    candidates = await _by_amount(uow.session, tenant_id, line)
    if len(candidates) > 1 and line.debtor:
        named = [i for i in candidates if (i.summary or {}).get("buyer_name", "").casefold() == line.debtor.casefold()]
        candidates = named or candidates
    if len(candidates) == 1:
        return [await _pay(uow, tracking, statement, line, candidates[0], line.amount, "amount", now)]
    why = "no open invoice for this amount" if not candidates else \
        f"{len(candidates)}{'+' if len(candidates) == _MAX_CANDIDATES else ''} open invoices for this amount"
    return [LineOutcome(line, "unmatched", reason=f"quotes no known invoice number; {why}")]


async def import_statement(uow: UnitOfWork, tracking: Tracking, *, tenant_id: str, statement: Statement,
                           now: datetime) -> list[LineOutcome]:
    """Match and record every line of `statement` in the caller's transaction (one import per tenant at a time)."""
    await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                              {"key": f"tracker.statement:{tenant_id}"})
    outcomes: list[LineOutcome] = []
    for line in statement.lines:
        outcomes += await _import_line(uow, tracking, tenant_id, statement, line, now)
    return outcomes


"""Publishing the reminders a scheduler pass decided, through the outbox of its transaction.

A customer who asked for grouped reminders gets one message per pass: the most insistent of
its reminders due at once carries the others (their steps marked emitted with its event id)
and lists every other invoice of the customer still overdue."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from parcours_contracts import GroupedInvoice
from parcours_runtime.uow import UnitOfWork

from parcours_dunning.domain.planner import Policy
from parcours_dunning.domain.strategy import TONES
from parcours_dunning.planning import CREDIT_NOTE, Outgoing
from parcours_dunning.store.customers import customer_context, overdue_invoices
from parcours_dunning.store.invoices import facts_from, signals_of
from parcours_dunning.store.journal import audit

MAX_LISTED = 200  # ReminderInfo.grouped's bound


async def send_reminders(uow: UnitOfWork, outgoing: list[Outgoing], *, policy: Policy, now: datetime) -> None:
    by_customer: dict[tuple[str, str], list[Outgoing]] = defaultdict(list)
    for reminder in outgoing:
        by_customer[(reminder.invoice.tenant_id, reminder.invoice.customer_ref)].append(reminder)
    for (tenant_id, customer_ref), reminders in by_customer.items():
        customer = await customer_context(uow.session, tenant_id=tenant_id, customer_ref=customer_ref)
        if not customer.group_reminders:
            for reminder in reminders:
                uow.publish(reminder.event)
            continue
        await _send_grouped(uow, reminders, on=policy.for_zone(customer.timezone).calendar.local_date(now), now=now)


def _insistence(reminder: Outgoing) -> tuple[int, int]:
    """The most insistent tone first, then the oldest due date."""
    return TONES.index(reminder.event.reminder.tone or "gentle"), -reminder.invoice.due_date.toordinal()


async def _send_grouped(uow: UnitOfWork, reminders: list[Outgoing], *, on, now: datetime) -> None:
    lead = max(reminders, key=_insistence)
    folded = [r for r in reminders if r is not lead]
    listed = [GroupedInvoice(invoice_id=r.invoice.invoice_id, number=r.invoice.number, issue_date=r.invoice.issue_date,
                             due_date=r.invoice.due_date, currency=r.invoice.currency, open_amount=r.facts.open_amount)
              for r in folded]
    for reminder in folded:
        reminder.row.event_id = lead.row.event_id
        reminder.row.reason = f"{reminder.row.reason}; grouped into the reminder of invoice {lead.invoice.number}"
        audit(uow.session, tenant_id=reminder.invoice.tenant_id, invoice_id=reminder.invoice.invoice_id, at=now,
              kind="grouped", step=reminder.row.step, detail=f"sent within the reminder of invoice {lead.invoice.number}")
    listed += await _other_overdue(uow, lead, skip={r.invoice.key for r in reminders}, on=on,
                                   room=MAX_LISTED - len(listed))
    event = lead.event
    if listed:
        event = event.model_copy(update={
            "reason": f"{event.reason}; with {len(listed)} other invoice(s) of the customer",
            "reminder": event.reminder.model_copy(update={"grouped": listed[:MAX_LISTED]})})
    uow.publish(event)


async def _other_overdue(uow: UnitOfWork, lead: Outgoing, *, skip: set, on, room: int) -> list[GroupedInvoice]:
    """The customer's other invoices past due on `on` that are still open (not paid, refused, excluded)."""
    if room <= 0:
        return []
    candidates = [i for i in await overdue_invoices(uow.session, tenant_id=lead.invoice.tenant_id,
                                                    customer_ref=lead.invoice.customer_ref, before=on,
                                                    limit=room + len(skip))
                  if i.key not in skip and i.invoice_summary().type_code != CREDIT_NOTE]
    signals = await signals_of(uow.session, keys=[i.key for i in candidates])
    out = []
    for invoice in candidates:
        facts = facts_from(invoice, signals[invoice.key])
        if facts.stop() is None and facts.open_amount > 0:
            out.append(GroupedInvoice(invoice_id=invoice.invoice_id, number=invoice.number,
                                      issue_date=invoice.issue_date, due_date=invoice.due_date,
                                      currency=invoice.currency, open_amount=facts.open_amount))
    return out[:room]

"""Keeping each invoice's schedule rows in line with its facts, and applying the scheduler's
decisions: the store loads, the domain (planner) decides, this writes rows, tasks, the
audit log and ReminderDue events. Used by the handlers, the routes and the scheduler alike,
always under the invoice row's lock."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import InvoiceReceived, Penalties, ReminderDue, ReminderInfo
from parcours_dunning.domain.calendar import BusinessCalendar
from parcours_dunning.domain.facts import InvoiceFacts
from parcours_dunning.domain.planner import Decided, Fire, Past, Policy, decide_due, derive
from parcours_dunning.domain.strategy import DEFAULT_STRATEGY, Step, Strategy
from parcours_dunning.store.customers import customer_contexts
from parcours_dunning.store.invoices import Invoice, InvoiceKey, add_invoices, facts_from, lock_invoices, signals_of
from parcours_dunning.store.journal import add_audit_entries, audit, audit_entry, open_task
from parcours_dunning.store.schedule import PlainStep, ScheduledStep, add_steps, save_steps, steps_by_invoice
from parcours_dunning.store.strategies import choose_strategies, get_version

# ReminderDue ids derive from the step, so one step is one event whoever decides it.
_REMINDER_NAMESPACE = uuid.UUID("7f0e4a53-3f4e-4a0e-9a55-2b8f5d1d0c11")

CREDIT_NOTE = "381"  # UNTDID 1001: money the seller owes, nothing to dun


@dataclass
class Outgoing:
    """A reminder decided in this transaction, to publish (alone or grouped) before it commits."""

    invoice: Invoice
    row: ScheduledStep
    facts: InvoiceFacts
    event: ReminderDue


def reminder_event_id(*, tenant_id: str, invoice_id: UUID, strategy: str, step: str) -> UUID:
    return uuid.uuid5(_REMINDER_NAMESPACE, f"{tenant_id}/{invoice_id}/{strategy}/{step}")


def policy_from(settings) -> Policy:
    """The planning rules the service's settings describe."""
    calendar = BusinessCalendar(country=settings.holiday_country, tz=settings.timezone,
                                window_start=settings.send_window_start, window_end=settings.send_window_end,
                                window_days=settings.send_days)
    return Policy(calendar=calendar, promise_grace_days=settings.promise_grace_days, ecb_rates=settings.ecb_rates,
                  margin_points=settings.penalty_margin_points, indemnity=settings.recovery_indemnity)


def history_of(rows: list[ScheduledStep]) -> dict[str, Past]:
    return {row.step: Past("skipped" if row.state == "skipped" else "emitted", row.decided_at, row.action)
            for row in rows if row.decided}


@dataclass
class Loaded:
    """A locked invoice with everything the planner decides from."""

    invoice: Invoice
    strategy: Strategy
    facts: InvoiceFacts
    rows: list[ScheduledStep]


async def strategy_of(session: AsyncSession, invoice: Invoice) -> Strategy:
    """The strategy version the invoice follows, with the invoice's own custom steps."""
    return (await _strategies_of(session, [invoice]))[invoice.key]


async def _strategies_of(session: AsyncSession, invoices: list[Invoice]) -> dict[InvoiceKey, Strategy]:
    versions: dict[tuple[str, str, int], Strategy] = {}
    out = {}
    for invoice in invoices:
        version = (invoice.tenant_id, invoice.strategy, invoice.strategy_version)
        if version not in versions:
            strategy = await get_version(session, tenant_id=invoice.tenant_id, strategy_id=invoice.strategy,
                                         version=invoice.strategy_version)
            versions[version] = strategy or DEFAULT_STRATEGY  # its version is gone (never deleted today): not a wedge
        custom = invoice.custom_steps
        out[invoice.key] = versions[version].with_custom_steps([Step.model_validate(step) for step in custom]) \
            if custom else versions[version]
    return out


async def facts_of(session: AsyncSession, invoice: Invoice) -> InvoiceFacts:
    """The invoice's facts, with its customer's tags, time zone and customer-wide pauses."""
    return (await _facts_of(session, [invoice]))[invoice.key]


async def _facts_of(session: AsyncSession, invoices: list[Invoice]) -> dict[InvoiceKey, InvoiceFacts]:
    signals = await signals_of(session, keys=[invoice.key for invoice in invoices])
    customers = await customer_contexts(session, keys={(i.tenant_id, i.customer_ref) for i in invoices})
    out = {}
    for invoice in invoices:
        customer = customers[(invoice.tenant_id, invoice.customer_ref)]
        out[invoice.key] = facts_from(invoice, signals[invoice.key] + list(customer.signals), customer.tags,
                                      customer.timezone)
    return out


async def load(session: AsyncSession, invoices: list[Invoice], *, plain: bool = False) -> list[Loaded]:
    """What the planner needs of these (locked) invoices, in a few statements for all of them
    (`plain`: their schedule rows as PlainSteps, which the caller writes back itself; the
    invoices are then PlainInvoices, see lock_invoices)."""
    strategies = await _strategies_of(session, invoices)
    facts = await _facts_of(session, invoices)
    rows = await steps_by_invoice(session, keys=[invoice.key for invoice in invoices], plain=plain)
    return [Loaded(invoice, strategies[invoice.key], facts[invoice.key], rows[invoice.key]) for invoice in invoices]


async def plan_invoices(session: AsyncSession, *, events: list[InvoiceReceived], policy: Policy,
                        now: datetime) -> set[InvoiceKey]:
    """Store received invoices with the strategy version each will follow, and schedule them from the facts
    stored so far; the keys of those planned now (an invoice received before is left as it is)."""
    strategies = await choose_strategies(session, invoices=[(e.tenant_id, e.invoice_id, e.invoice.customer_ref)
                                                            for e in events])
    new = await add_invoices(session, [(e, (s := strategies[(e.tenant_id, e.invoice_id)]).id, s.version)
                                       for e in events])
    # A new invoice's rows are only ever inserted here: written by two executemany statements at the end
    # instead of through the ORM unit of work (identity keys returned one by one: a third of dunning's CPU).
    steps: list[PlainStep] = []
    entries: list[dict] = []
    for item in await load(session, await lock_invoices(session, keys=sorted(new), plain=True), plain=True):
        invoice, strategy = item.invoice, item.strategy
        if is_credit_note(invoice):
            entries.append(audit_entry(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now,
                                       kind="skipped", detail="credit note (type 381): no reminder plan"))
            continue
        entries.append(audit_entry(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now, kind="planned",
                                   detail=f"follows strategy {strategy.id} version {strategy.version} "
                                          f"({strategy.spec.name})"))
        place(session, invoice=invoice, strategy=strategy, facts=item.facts, rows=item.rows, policy=policy, now=now,
              created=steps, entries=entries)
    await add_steps(session, steps)
    await add_audit_entries(session, entries)
    return new


def is_credit_note(invoice: Invoice) -> bool:
    return (invoice.summary or {}).get("type_code") == CREDIT_NOTE


async def refresh(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, policy: Policy, now: datetime) -> None:
    """After a new fact: lock the invoice and bring its undecided steps in line."""
    await refresh_many(session, keys=[(tenant_id, invoice_id)], policy=policy, now=now)


async def refresh_many(session: AsyncSession, *, keys: list[InvoiceKey], policy: Policy, now: datetime) -> None:
    """refresh for many invoices at once: locked in key order, loaded together; those not received
    yet are skipped (their facts are stored and count when they arrive). Rows and audit entries
    are plain values written by three executemany statements (changed rows, new rows, entries)."""
    await session.flush()  # what the caller added through the ORM (its own audit entry) goes first
    loaded, created, entries = [], [], []
    for item in await load(session, await lock_invoices(session, keys=sorted(set(keys)), plain=True), plain=True):
        place(session, invoice=item.invoice, strategy=item.strategy, facts=item.facts, rows=item.rows, policy=policy,
              now=now, created=created, entries=entries)
        loaded += item.rows
    await save_steps(session, loaded)
    await add_steps(session, created)
    await add_audit_entries(session, entries)


def place(session: AsyncSession, *, invoice: Invoice, strategy: Strategy, facts: InvoiceFacts,
          rows: list[ScheduledStep] | list[PlainStep], policy: Policy, now: datetime,
          created: list[PlainStep] | None = None, entries: list[dict] | None = None) -> None:
    """Write where each undecided step stands now; stop them all if dunning ended; log what changed.
    New rows go to `created` and audit entries to `entries` when given (the caller inserts them),
    else into the session."""
    if is_credit_note(invoice):
        return  # never planned: later facts (payments, operator routes) must not plan it either
    by_step = {row.step: row for row in rows}
    schedule = derive(strategy, facts, history_of(rows), policy)
    if schedule.stop:
        undecided = [row for row in rows if not row.decided] + [
            _new_row(session, invoice, p.occurrence, p.fire_at, "paused", None, created) for p in schedule.planned
            if p.occurrence.key not in by_step]
        for row in undecided:
            row.state, row.decided_at, row.reason = "skipped", now, f"stopped: {schedule.stop}"
        if undecided:
            _log(session, entries, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now, kind="stopped",
                 detail=f"{schedule.stop}; skipped {', '.join(r.step for r in undecided)}")
        return
    changes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for p in schedule.planned:
        state = "paused" if p.hold or p.fire_at is None else "pending"
        row = by_step.get(p.occurrence.key)
        if row is None:
            _new_row(session, invoice, p.occurrence, p.fire_at, state, p.hold, created)
            continue
        if row.state != state:
            if state == "paused":
                changes[("paused", p.hold)].append(row.step)
            else:  # a step waiting for its anchor is scheduled; a held one resumes
                waited = (row.reason or "").startswith("waiting")
                changes[("scheduled" if waited else "resumed", "")].append(f"{row.step} at {p.fire_at.isoformat()}")
        elif state == "pending" and row.fire_at != p.fire_at:
            changes[("rescheduled", "")].append(f"{row.step} to {p.fire_at.isoformat()}")
        row.state, row.fire_at, row.reason = state, p.fire_at, p.hold
    planned_keys = {p.occurrence.key for p in schedule.planned}
    for row in rows:
        if not row.decided and row.step not in planned_keys:
            row.state, row.decided_at = "skipped", now
            row.reason = f"strategy {strategy.id} v{strategy.version} has no step {row.step}"
            changes[("skipped", row.reason)].append(row.step)
    for (kind, why), steps in changes.items():
        _log(session, entries, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now, kind=kind,
             detail=f"{why + '; ' if why else ''}{', '.join(steps)}")


def _log(session: AsyncSession, entries: list[dict] | None, **entry) -> None:
    if entries is None:
        audit(session, **entry)
    else:
        entries.append(audit_entry(**entry))


def _new_row(session: AsyncSession, invoice: Invoice, occurrence, fire_at, state: str, reason: str | None,
             created: list[PlainStep] | None = None) -> ScheduledStep | PlainStep:
    values = dict(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, strategy=invoice.strategy,
                  step=occurrence.key, sequence=occurrence.sequence, action=occurrence.step.action.kind,
                  fire_at=fire_at, state=state, reason=reason, decided_at=None, event_id=None)
    if created is None:
        row = ScheduledStep(**values)
        session.add(row)
    else:
        row = PlainStep(**values)
        created.append(row)
    return row


async def decide_invoice(session: AsyncSession, *, invoice: Invoice, strategy: Strategy, facts: InvoiceFacts,
                         rows: list[ScheduledStep], policy: Policy, now: datetime,
                         outgoing: list[Outgoing]) -> list[tuple[ScheduledStep, Decided]]:
    """Decide the (locked) invoice's steps whose time has come: mark reminders emitted (their
    ReminderDue appended to `outgoing`), open tasks, skip; then re-place the rest."""
    by_step = {row.step: row for row in rows}
    out = []
    for decided in decide_due(strategy, facts, history_of(rows), policy, now):
        row = by_step.get(decided.key)
        if row is None:
            row = by_step[decided.key] = _new_row(session, invoice, decided.occurrence, decided.fire_at, "pending", None)
            rows.append(row)
        row.decided_at, row.reason = now, decided.decision.reason
        action = decided.occurrence.step.action
        if not isinstance(decided.decision, Fire):
            row.state = "skipped"
            audit(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now, kind="skipped",
                  step=row.step, detail=decided.decision.reason)
        elif action.kind == "reminder":
            row.state = "emitted"
            row.event_id = reminder_event_id(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id,
                                             strategy=invoice.strategy, step=row.step)
            penalties = decided.decision.penalties
            outgoing.append(Outgoing(invoice, row, facts, ReminderDue(
                event_id=row.event_id, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id,
                correlation_id=invoice.correlation_id, occurred_at=now,
                reminder=ReminderInfo(strategy=invoice.strategy, step=row.step, sequence=row.sequence,
                                      channel=action.channel, template=action.template,
                                      tone=strategy.tone_of(decided.occurrence.step)),
                reason=decided.decision.reason, invoice=invoice.invoice_summary(),
                penalties=Penalties(indemnity=penalties.indemnity, interest=penalties.interest, rate=penalties.rate,
                                    days_late=penalties.days_late, base=penalties.base) if penalties else None)))
            audit(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now, kind="sent",
                  step=row.step, detail=decided.decision.reason)
        elif action.kind == "task":
            row.state = "done"
            await open_task(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, kind=action.task,
                            due=policy.calendar.local_date(now), source=f"step:{row.step}",
                            reason=decided.decision.reason, at=now)
            audit(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now, kind="task",
                  step=row.step, detail=f"{action.task}: {decided.decision.reason}")
        elif action.kind == "handover":
            row.state = "done"
            to = f" to {action.agency}" if action.agency else ""
            await open_task(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, kind="collection",
                            due=policy.calendar.local_date(now), source=f"step:{row.step}",
                            reason=f"hand over{to}: {decided.decision.reason}", at=now)
            audit(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now, kind="handover",
                  step=row.step, detail=f"handed over to collection{to}: {decided.decision.reason}")
        else:
            row.state = "done"
            audit(session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, at=now, kind="stopped",
                  step=row.step, detail=f"stop step reached: {decided.decision.reason}")
        out.append((row, decided))
    place(session, invoice=invoice, strategy=strategy, facts=facts, rows=rows, policy=policy, now=now)
    return out


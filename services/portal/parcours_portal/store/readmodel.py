"""The read model's writes: each event becomes one timeline row (with the evidence it carried) and
updates its invoice's row, in the consumer's transaction. A redelivered event changes nothing.

The consumer hands over the events of a polled batch together (`apply`): their timeline rows go in
one INSERT (redeliveries drop out there, so the consumer keeps no inbox rows for them), each
invoice's changes are folded in event order in Python, new invoices are inserted with their folded
state in one INSERT, and the known ones are locked in key order and those that changed written by
one UPDATE … FROM unnest(arrays): a fixed number of statements per batch, whatever its size."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ARRAY, String, Text, and_, any_, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import InvoiceSummary
from parcours_contracts.events import InvoiceEvent
from parcours_portal.store.models import Customer, Incident, Invoice, Recipient, TimelineEntry
from parcours_runtime.handlers import recorded_once

InvoiceKey = tuple[str, uuid.UUID]


@dataclass
class Entry:
    """What one event brings to the read model: its timeline row, the summary it carried, the
    invoice columns it sets, and what else it does (count a reminder, open or settle an incident)."""

    event: InvoiceEvent
    kind: str
    detail: dict[str, Any]
    summary: InvoiceSummary | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    reminded: bool = False
    incident: Literal["open", "resolve"] | None = None
    recipients: list[str] = field(default_factory=list)

    @property
    def key(self) -> InvoiceKey:
        return self.event.tenant_id, self.event.invoice_id


# The invoice columns the events set, and their values before any event.
STATE = ("number", "customer_ref", "buyer_name", "seller_name", "issue_date", "due_date", "currency", "total",
         "open_amount", "has_pdf", "source_format", "status", "code", "status_at", "channel", "open_incidents", "promised_on",
         "reminders", "last_reminder")
NEW_INVOICE = dict.fromkeys(STATE) | {"has_pdf": False, "status": "pending", "open_incidents": 0, "reminders": 0}


async def append(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID, event_id: uuid.UUID, kind: str,
                 occurred_at: datetime, detail: dict[str, Any], correlation_id: str) -> bool:
    """Add one timeline row (an answer given on the portal) and make sure the invoice row exists;
    False if the event was already there."""
    added = (await session.execute(
        insert(TimelineEntry).values(tenant_id=tenant_id, invoice_id=invoice_id, event_id=event_id, kind=kind,
                                     occurred_at=occurred_at, detail=detail)
        .on_conflict_do_nothing(index_elements=[TimelineEntry.event_id]).returning(TimelineEntry.id))).first()
    if added is None:
        return False
    await _insert_invoices(session, {(tenant_id, invoice_id): (correlation_id, NEW_INVOICE)})
    return True


async def apply(session: AsyncSession, entries: list[Entry]) -> None:
    """Record a batch of events (in the order they were consumed); those already recorded change nothing."""
    # The timeline's unique event id is the consumer's inbox here (the handler claims no inbox rows).
    entries = recorded_once(entries, await _add_timeline(session, entries), lambda entry: entry.event.event_id)
    if not entries:
        return
    await _add_recipients(session, entries)
    counted = await _write_incidents(session, [entry for entry in entries if entry.incident])
    by_key: dict[InvoiceKey, list[Entry]] = {}
    for entry in entries:
        by_key.setdefault(entry.key, []).append(entry)

    def folded(key: InvoiceKey, state: dict[str, Any]) -> dict[str, Any]:
        state = dict(state)
        for entry in by_key[key]:
            _fold(state, entry)
        if key in counted:
            state["open_incidents"] = counted[key]
        return state

    # New invoices are inserted with their folded state (one row version, not an insert then an update).
    known = await _known_invoices(session, list(by_key))
    created = await _insert_invoices(session, {key: (by_key[key][0].event.correlation_id, folded(key, NEW_INVOICE))
                                               for key in by_key if key not in known})
    before = await _lock_invoices(session, sorted(key for key in by_key if key not in created))
    after = {key: folded(key, state) for key, state in before.items()}
    await _write_invoices(session, {key: state for key, state in after.items() if state != before[key]})


def _fold(state: dict[str, Any], entry: Entry) -> None:
    """One event's changes to its invoice (as they were applied one event at a time)."""
    changes = dict(entry.changes)
    summary = entry.summary
    if summary is not None and (state["number"] is None or entry.kind == "received"):  # InvoiceReceived is authoritative
        changes.update(number=summary.number, customer_ref=summary.customer_ref, buyer_name=summary.buyer_name,
                       seller_name=summary.seller_name, issue_date=summary.issue_date, due_date=summary.due_date,
                       currency=summary.currency, total=summary.total_incl_tax, has_pdf=summary.has_pdf,
                       source_format=summary.source_format)
        if state["open_amount"] is None:
            changes["open_amount"] = summary.total_incl_tax
    state.update(changes)
    if entry.reminded:
        state["reminders"] += 1


def _unnest(table, names: tuple[str, ...], rows: list[tuple]):
    """`unnest(one array per column) AS batch(names…)`: a batch of rows as one bound array per column,
    so a statement has one text (one prepared plan) whatever the number of rows. JSONB travels as text."""
    arrays = []
    for i, name in enumerate(names):
        kind = table.c[name].type
        values = [row[i] for row in rows]
        if isinstance(kind, JSONB):
            values, kind = [None if v is None else json.dumps(v) for v in values], Text()
        elif isinstance(kind, String):
            kind = Text()
        arrays.append(literal(values, ARRAY(kind)))
    batch = func.unnest(*arrays).table_valued(*names).render_derived(name="batch")
    return batch, [cast(batch.c[n], JSONB) if isinstance(table.c[n].type, JSONB) else batch.c[n] for n in names]


def _among(table, keys: list[InvoiceKey]):
    """`tenant_id = ANY(…) AND invoice_id = ANY(…)`: one statement text whatever the number of keys
    (a superset when tenants mix: callers keep the keys they asked for)."""
    return and_(table.c.tenant_id == any_(literal(sorted({k[0] for k in keys}), ARRAY(Text()))),
                table.c.invoice_id == any_(literal(sorted({k[1] for k in keys}), ARRAY(table.c.invoice_id.type))))


async def _add_timeline(session: AsyncSession, entries: list[Entry]) -> set[uuid.UUID]:
    """The timeline rows, one INSERT for all; the ids of the events not recorded before."""
    table = TimelineEntry.__table__
    names = ("tenant_id", "invoice_id", "event_id", "kind", "occurred_at", "detail")
    batch, columns = _unnest(table, names, [(e.event.tenant_id, e.event.invoice_id, e.event.event_id, e.kind,
                                             e.event.occurred_at, e.detail) for e in entries])
    added = await session.execute(insert(table).from_select(names, select(*columns))
                                  .on_conflict_do_nothing(index_elements=[table.c.event_id])
                                  .returning(table.c.event_id))
    return set(added.scalars())


async def _known_invoices(session: AsyncSession, keys: list[InvoiceKey]) -> set[InvoiceKey]:
    table = Invoice.__table__
    rows = await session.execute(select(table.c.tenant_id, table.c.invoice_id).where(_among(table, keys)))
    return {(tenant_id, invoice_id) for tenant_id, invoice_id in rows} & set(keys)


async def _insert_invoices(session: AsyncSession, rows: dict[InvoiceKey, tuple[str, dict[str, Any]]]
                           ) -> set[InvoiceKey]:
    """Insert invoices not known yet, each with (correlation id, state), in key order; the keys inserted
    (one a concurrent batch inserted meanwhile is not: the caller updates it instead)."""
    if not rows:
        return set()
    table = Invoice.__table__
    names = ("tenant_id", "invoice_id", "correlation_id", *STATE)
    batch, columns = _unnest(table, names, [(*key, rows[key][0], *(rows[key][1][n] for n in STATE))
                                            for key in sorted(rows)])
    inserted = await session.execute(insert(table).from_select(names, select(*columns))
                                     .on_conflict_do_nothing(index_elements=[table.c.tenant_id, table.c.invoice_id])
                                     .returning(table.c.tenant_id, table.c.invoice_id))
    return {(tenant_id, invoice_id) for tenant_id, invoice_id in inserted}


async def _lock_invoices(session: AsyncSession, keys: list[InvoiceKey]) -> dict[InvoiceKey, dict[str, Any]]:
    """The invoices' current state, locked in key order."""
    table = Invoice.__table__
    rows = await session.execute(
        select(table.c.tenant_id, table.c.invoice_id, *[table.c[name] for name in STATE]).where(_among(table, keys))
        .order_by(table.c.tenant_id, table.c.invoice_id).with_for_update())
    wanted = set(keys)
    return {key: dict(zip(STATE, row[2:])) for row in rows if (key := (row[0], row[1])) in wanted}


async def _write_invoices(session: AsyncSession, states: dict[InvoiceKey, dict[str, Any]]) -> None:
    """UPDATE … FROM unnest(…): every changed invoice in one statement."""
    if not states:
        return
    table = Invoice.__table__
    names = ("tenant_id", "invoice_id", *STATE)
    batch, columns = _unnest(table, names, [(*key, *(states[key][n] for n in STATE)) for key in sorted(states)])
    await session.execute(update(table).where(_among(table, list(states)),  # the key read by the primary key
                                              table.c.tenant_id == batch.c.tenant_id,
                                              table.c.invoice_id == batch.c.invoice_id)
                          .values(**{n: c for n, c in zip(names[2:], columns[2:])}, updated_at=func.now()))


async def _write_incidents(session: AsyncSession, entries: list[Entry]) -> dict[InvoiceKey, int]:
    """Open or settle the entries' incidents in order (they are few); the open incidents of their invoices then."""
    if not entries:
        return {}
    for entry in entries:
        event = entry.event
        if entry.incident == "open":
            await session.execute(insert(Incident).values(
                tenant_id=event.tenant_id, incident_id=event.incident_id, invoice_id=event.invoice_id,
                kind=event.kind, channel=event.channel, suggested_action=event.suggested_action,
                evidence=event.evidence, status="open", opened_at=event.occurred_at).on_conflict_do_nothing())
        else:
            await session.execute(update(Incident).where(
                Incident.tenant_id == event.tenant_id, Incident.incident_id == event.incident_id
            ).values(status="resolved", resolved_at=event.occurred_at, resolution=event.resolution))
    table = Incident.__table__
    counts = dict.fromkeys({entry.key for entry in entries}, 0)
    rows = await session.execute(select(table.c.tenant_id, table.c.invoice_id,  # status filtered after the key
                                        func.count().filter(table.c.status == "open"))
                                 .where(_among(table, list(counts))).group_by(table.c.tenant_id, table.c.invoice_id))
    for tenant_id, invoice_id, count in rows:
        if (tenant_id, invoice_id) in counts:
            counts[(tenant_id, invoice_id)] = count
    return counts


async def _add_recipients(session: AsyncSession, entries: list[Entry]) -> None:
    """Addresses the customers' invoices go to: they may ask the portal for a sign-in link."""
    rows = sorted({(e.event.tenant_id, e.summary.customer_ref, email.lower())
                   for e in entries if e.recipients for email in e.recipients})
    if rows:
        table = Recipient.__table__
        names = ("tenant_id", "customer_ref", "email")
        batch, columns = _unnest(table, names, rows)
        await session.execute(insert(table).from_select(names, select(*columns)).on_conflict_do_nothing())


async def upsert_customer(session: AsyncSession, event) -> None:
    values = dict(name=event.name, group=event.group, language=event.language)
    await session.execute(insert(Customer).values(tenant_id=event.tenant_id, customer_ref=event.customer_ref, **values)
                          .on_conflict_do_update(index_elements=[Customer.tenant_id, Customer.customer_ref],
                                                 set_=values))

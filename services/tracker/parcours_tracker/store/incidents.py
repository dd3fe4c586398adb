"""Incidents and receipt timers: opening, resolving, listing, and the due timers of the sweep."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import IncidentOpened, IncidentResolved
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.incidents import IncidentDraft
from parcours_tracker.store.models import Incident, Invoice, JournalEntry, ReceiptTimer

OPEN, RESOLVED = "open", "resolved"


async def add_verdict(session: AsyncSession, *, tenant_id: str, invoice_id: uuid.UUID, event_id: uuid.UUID,
                      kind: str, occurred_at: datetime, detail: dict) -> bool:
    """Write one of the tracker's own verdicts (anomaly, incident) into the journal, once per event id."""
    return (await session.execute(
        insert(JournalEntry)
        .values(tenant_id=tenant_id, invoice_id=invoice_id, event_id=event_id, kind=kind, occurred_at=occurred_at,
                detail=detail)
        .on_conflict_do_nothing(index_elements=[JournalEntry.event_id]).returning(JournalEntry.id)
    )).first() is not None


async def open_incident(uow: UnitOfWork, *, invoice: Invoice, draft: IncidentDraft, now: datetime) -> Incident | None:
    """Open an incident and publish IncidentOpened; None if one of that kind is already open."""
    incident_id = uuid.uuid4()
    inserted = (await uow.session.execute(
        insert(Incident)
        .values(incident_id=incident_id, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, kind=draft.kind,
                channel=draft.channel, status=OPEN, evidence=draft.evidence, suggested_action=draft.suggested_action,
                opened_at=now)
        # The partial index's predicate as a literal: with a bound parameter, PostgreSQL cannot infer the
        # arbiter index once a prepared statement switches to its generic plan (after 5 executions).
        .on_conflict_do_nothing(index_elements=[Incident.tenant_id, Incident.invoice_id, Incident.kind],
                                index_where=text(f"status = '{OPEN}'"))
        .returning(Incident)
    )).scalar_one_or_none()
    if inserted is None:
        return None
    event = IncidentOpened(tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id,
                           correlation_id=invoice.correlation_id, occurred_at=now, incident_id=incident_id,
                           kind=draft.kind, channel=draft.channel, evidence=draft.evidence,
                           suggested_action=draft.suggested_action)
    await add_verdict(uow.session, tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, event_id=event.event_id,
                      kind=journal.INCIDENT_OPENED, occurred_at=now,
                      detail={"incident_id": str(incident_id), "kind": draft.kind, "channel": draft.channel,
                              "suggested_action": draft.suggested_action})
    uow.publish(event)
    return inserted


async def resolve(uow: UnitOfWork, *, tenant_id: str, invoice_id: uuid.UUID, correlation_id: str, resolution: str,
                  now: datetime, kinds: tuple[str, ...] | None = None, incident_id: uuid.UUID | None = None,
                  ) -> list[Incident]:
    """Resolve the invoice's open incidents of `kinds` (or the one `incident_id`); publish IncidentResolved each."""
    query = (update(Incident)
             .where(Incident.tenant_id == tenant_id, Incident.invoice_id == invoice_id, Incident.status == OPEN)
             .values(status=RESOLVED, resolution=resolution, resolved_at=now).returning(Incident))
    if kinds is not None:
        query = query.where(Incident.kind.in_(kinds))
    if incident_id is not None:
        query = query.where(Incident.incident_id == incident_id)
    resolved = list((await uow.session.execute(query)).scalars())
    for incident in resolved:
        event = IncidentResolved(tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=correlation_id,
                                 occurred_at=now, incident_id=incident.incident_id, resolution=resolution)
        await add_verdict(uow.session, tenant_id=tenant_id, invoice_id=invoice_id, event_id=event.event_id,
                          kind=journal.INCIDENT_RESOLVED, occurred_at=now,
                          detail={"incident_id": str(incident.incident_id), "kind": incident.kind,
                                  "resolution": resolution})
        uow.publish(event)
    return resolved


async def due_timers(session: AsyncSession, *, now: datetime, limit: int,
                     skip_locked: bool = True) -> list[tuple[ReceiptTimer, Invoice]]:
    """Unfired timers past their deadline, locked, oldest first. With `skip_locked`, rows another transaction
    holds are left for a later pass (replicas share the work); without, they are waited for, and a row that
    transaction fired or settled is not returned."""
    rows = (await session.execute(
        select(ReceiptTimer, Invoice)
        .join(Invoice, (Invoice.tenant_id == ReceiptTimer.tenant_id) & (Invoice.invoice_id == ReceiptTimer.invoice_id))
        .where(ReceiptTimer.fired_at.is_(None), ReceiptTimer.expect_by <= now)
        .order_by(ReceiptTimer.expect_by).limit(limit)
        # The invoice too: recording a fact locks it, so a timer is never fired under a projection in progress.
        .with_for_update(of=(ReceiptTimer, Invoice), skip_locked=skip_locked)
    )).all()
    return [(row[0], row[1]) for row in rows]


async def find(session: AsyncSession, *, tenant_id: str, incident_id: uuid.UUID) -> Incident | None:
    return (await session.execute(
        select(Incident).where(Incident.tenant_id == tenant_id, Incident.incident_id == incident_id)
    )).scalar_one_or_none()


async def list_incidents(session: AsyncSession, *, tenant_id: str, status: str | None, kind: str | None,
                         before_seq: int | None, limit: int) -> list[Incident]:
    """The tenant's incidents, newest first, from a keyset position."""
    query = select(Incident).where(Incident.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Incident.status == status)
    if kind is not None:
        query = query.where(Incident.kind == kind)
    if before_seq is not None:
        query = query.where(Incident.seq < before_seq)
    return list((await session.execute(query.order_by(Incident.seq.desc()).limit(limit))).scalars())


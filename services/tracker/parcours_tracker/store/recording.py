"""Recording facts set-based: a batch of facts (a polled batch of events, or the one fact of an API
call) costs the same four statements whatever its size: one journal insert, the touched invoices
locked in key order (plus one insert of those not known yet), their journals, timers and open
incidents read in one query, the projection folded in Python fact by fact (`domain.following`), then
one update of the invoices that also writes the timers that changed; incidents and verdicts in bulk
when there are some. The events go out in the order the facts raised them, exactly as if each fact
had been recorded alone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import DateTime, String, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import IncidentOpened, IncidentResolved
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain.following import Fact, InvoiceState, Outcome, Timer, Windows, follow, summary_columns
from parcours_tracker.domain.journal import INCIDENT_OPENED, INCIDENT_RESOLVED, Entry
from parcours_tracker.domain.status import PENDING, Projection

Key = tuple[str, uuid.UUID]

# Arrays in, one statement text whatever the batch size (one prepared statement). Lookups are
# `tenant_id = ANY(…) AND invoice_id = ANY(…)` (a superset when tenants mix: rows are kept by key).
def _among_sql(table: str = "") -> str:
    prefix = f"{table}." if table else ""
    return (f"{prefix}tenant_id = ANY(CAST(:tenant_ids AS varchar[])) "
            f"AND {prefix}invoice_id = ANY(CAST(:invoice_ids AS uuid[]))")


_AMONG = _among_sql()

# The journal entries of the arrays, a redelivered one (same event id) left out.
_JOURNAL_INSERT = """
    INSERT INTO journal (tenant_id, invoice_id, event_id, kind, occurred_at, detail)
    SELECT u.tenant_id, u.invoice_id, u.event_id, u.kind, u.occurred_at, CAST(u.detail AS jsonb)
    FROM unnest(CAST(:tenant_ids AS varchar[]), CAST(:invoice_ids AS uuid[]), CAST(:event_ids AS uuid[]),
                CAST(:kinds AS varchar[]), CAST(:occurred_ats AS timestamptz[]), CAST(:details AS text[]))
         AS u(tenant_id, invoice_id, event_id, kind, occurred_at, detail)
    ON CONFLICT (event_id) DO NOTHING"""

_APPEND = text(_JOURNAL_INSERT + "\n    RETURNING event_id").columns(event_id=Uuid)

# The invoices the batch is the first to learn about; their rows stay locked by the insert.
_CREATE_INVOICES = text(f"""
    INSERT INTO invoices (tenant_id, invoice_id, correlation_id, status)
    SELECT u.tenant_id, u.invoice_id, u.correlation_id, '{PENDING}'
    FROM unnest(CAST(:tenant_ids AS varchar[]), CAST(:invoice_ids AS uuid[]), CAST(:correlation_ids AS varchar[]))
         AS u(tenant_id, invoice_id, correlation_id)
    ORDER BY u.tenant_id, u.invoice_id
    ON CONFLICT (tenant_id, invoice_id) DO NOTHING
    RETURNING tenant_id, invoice_id""").columns(invoice_id=Uuid)

# The row locks serialise concurrent appends for one invoice: whoever commits last projects all facts.
_LOCK_INVOICES = text(f"""
    SELECT tenant_id, invoice_id, correlation_id, status, summary IS NOT NULL AS has_summary, customer_ref
    FROM invoices WHERE {_AMONG} ORDER BY tenant_id, invoice_id FOR UPDATE""").columns(invoice_id=Uuid)

# Read once the invoices are locked, in one round trip: the journals (in the order things happened), the
# receipt timers and the open incidents. The sweep locks the invoice with the timer it fires, so behind our
# invoice locks no timer changes, and one it fired just before is seen here with its incident.
_READ = text(f"""
    SELECT 'journal' AS part, tenant_id, invoice_id, id AS seq, event_id AS ref, kind, occurred_at AS at, detail,
           CAST(NULL AS varchar) AS proof, CAST(NULL AS timestamptz) AS expect_by,
           CAST(NULL AS timestamptz) AS fired_at
    FROM journal WHERE {_AMONG}
    UNION ALL
    SELECT 'timer', tenant_id, invoice_id, 0, dispatch_id, channel, dispatched_at, NULL, proof, expect_by, fired_at
    FROM receipt_timers WHERE {_AMONG}
    UNION ALL
    SELECT 'incident', tenant_id, invoice_id, 0, incident_id, kind, NULL, NULL, NULL, NULL, NULL
    FROM incidents WHERE {_AMONG} AND status = 'open'
    ORDER BY part, tenant_id, invoice_id, at, seq""").columns(
    invoice_id=Uuid, ref=Uuid, kind=String, at=DateTime(timezone=True), detail=JSONB,
    expect_by=DateTime(timezone=True), fired_at=DateTime(timezone=True))

# The invoices and their timers in one statement: the timers no proof is awaited for any more go, the
# changed ones are upserted (their arrays are empty for most batches). The ANY conditions next to the
# joins give the planner the primary keys even before the tables have statistics.
_WRITE = text(f"""
    WITH dropped AS (
        DELETE FROM receipt_timers AS r
        USING unnest(CAST(:drop_tenant_ids AS varchar[]), CAST(:drop_invoice_ids AS uuid[])) AS d(tenant_id, invoice_id)
        WHERE r.tenant_id = d.tenant_id AND r.invoice_id = d.invoice_id AND {_among_sql('r')}
    ), timers AS (
        INSERT INTO receipt_timers (tenant_id, invoice_id, channel, dispatch_id, dispatched_at, proof, expect_by,
                                    fired_at)
        SELECT * FROM unnest(CAST(:timer_tenant_ids AS varchar[]), CAST(:timer_invoice_ids AS uuid[]),
                             CAST(:timer_channels AS varchar[]), CAST(:timer_dispatch_ids AS uuid[]),
                             CAST(:timer_dispatched_ats AS timestamptz[]), CAST(:timer_proofs AS varchar[]),
                             CAST(:timer_expect_bys AS timestamptz[]), CAST(:timer_fired_ats AS timestamptz[]))
        ON CONFLICT (tenant_id, invoice_id) DO UPDATE SET channel = excluded.channel,
            dispatch_id = excluded.dispatch_id, dispatched_at = excluded.dispatched_at, proof = excluded.proof,
            expect_by = excluded.expect_by, fired_at = excluded.fired_at
    )
    UPDATE invoices AS i SET status = u.status, code = u.code, status_at = u.status_at,
        first_dispatched_at = u.first_dispatched_at, acked_at = u.acked_at, viewed_at = u.viewed_at,
        correlation_id = u.correlation_id, customer_ref = u.customer_ref,
        summary = COALESCE(CAST(u.summary AS jsonb), i.summary),
        number = CASE WHEN u.summary IS NULL THEN i.number ELSE u.number END,
        number_key = CASE WHEN u.summary IS NULL THEN i.number_key ELSE u.number_key END,
        updated_at = now()
    FROM unnest(CAST(:tenant_ids AS varchar[]), CAST(:invoice_ids AS uuid[]), CAST(:statuses AS varchar[]),
                CAST(:codes AS smallint[]), CAST(:status_ats AS timestamptz[]),
                CAST(:first_dispatched_ats AS timestamptz[]), CAST(:acked_ats AS timestamptz[]),
                CAST(:viewed_ats AS timestamptz[]), CAST(:correlation_ids AS varchar[]),
                CAST(:customer_refs AS varchar[]), CAST(:summaries AS text[]), CAST(:numbers AS varchar[]),
                CAST(:number_keys AS varchar[]))
         AS u(tenant_id, invoice_id, status, code, status_at, first_dispatched_at, acked_at, viewed_at,
              correlation_id, customer_ref, summary, number, number_key)
    WHERE i.tenant_id = u.tenant_id AND i.invoice_id = u.invoice_id AND {_among_sql('i')}""")

# The partial index's predicate as a literal, so PostgreSQL infers the arbiter index in any plan.
_OPEN_NEW_INCIDENTS = text("""
    INSERT INTO incidents (incident_id, tenant_id, invoice_id, kind, channel, status, evidence, suggested_action,
                           opened_at, resolution, resolved_at)
    SELECT u.incident_id, u.tenant_id, u.invoice_id, u.kind, u.channel, u.status, CAST(u.evidence AS jsonb),
           u.suggested_action, CAST(:now AS timestamptz), u.resolution,
           CASE WHEN u.resolution IS NOT NULL THEN CAST(:now AS timestamptz) END
    FROM unnest(CAST(:incident_ids AS uuid[]), CAST(:tenant_ids AS varchar[]), CAST(:invoice_ids AS uuid[]),
                CAST(:kinds AS varchar[]), CAST(:channels AS varchar[]), CAST(:statuses AS varchar[]),
                CAST(:evidences AS text[]), CAST(:suggested_actions AS varchar[]), CAST(:resolutions AS varchar[]))
         AS u(incident_id, tenant_id, invoice_id, kind, channel, status, evidence, suggested_action, resolution)
    ON CONFLICT (tenant_id, invoice_id, kind) WHERE status = 'open' DO NOTHING
    RETURNING incident_id""").columns(incident_id=Uuid)

_RESOLVE_INCIDENTS = text("""
    UPDATE incidents AS i SET status = 'resolved', resolution = u.resolution, resolved_at = CAST(:now AS timestamptz)
    FROM unnest(CAST(:incident_ids AS uuid[]), CAST(:resolutions AS varchar[])) AS u(incident_id, resolution)
    WHERE i.incident_id = u.incident_id AND i.incident_id = ANY(CAST(:incident_ids AS uuid[])) AND i.status = 'open'
    RETURNING i.incident_id""").columns(incident_id=Uuid)


def _arrays(rows: Iterable[dict], *names: str) -> dict[str, list]:
    """Column arrays of `rows` for the unnest statements, named in the plural (status → statuses)."""
    rows = list(rows)
    return {_plural(name): [row[name] for row in rows] for name in names}


def _plural(name: str) -> str:
    if name.endswith("s"):
        return name + "es"
    return name[:-1] + "ies" if name.endswith("ry") else name + "s"


def _among(keys: Sequence[Key]) -> dict[str, list]:
    """The parameters of `_among_sql`: the tenants and the invoice ids (a superset of the keys)."""
    return {"tenant_ids": sorted({key[0] for key in keys}), "invoice_ids": sorted({key[1] for key in keys})}


def _keys(keys: Sequence[Key]) -> dict[str, list]:
    """The keys as two parallel arrays, for the unnest statements."""
    return {"tenant_ids": [key[0] for key in keys], "invoice_ids": [key[1] for key in keys]}


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, default=_default)


def _default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _rows(rows: list[tuple[str, uuid.UUID, Entry]]) -> dict[str, list]:
    return {"tenant_ids": [row[0] for row in rows], "invoice_ids": [row[1] for row in rows],
            "event_ids": [row[2].event_id for row in rows], "kinds": [row[2].kind for row in rows],
            "occurred_ats": [row[2].occurred_at for row in rows], "details": [_json(row[2].detail) for row in rows]}


async def append_entries(session: AsyncSession, rows: list[tuple[str, uuid.UUID, Entry]]) -> set[uuid.UUID]:
    """Journal (tenant, invoice, entry) rows in one statement; the event ids that were new."""
    if not rows:
        return set()
    result = await session.execute(_APPEND, _rows(rows))
    return set(result.scalars())


async def record_many(uow: UnitOfWork, windows: Windows, now: datetime, facts: Sequence[Fact],
                      ) -> list[Projection | None]:
    """Record `facts` in order (see the module); per fact, the invoice's projection once it was
    recorded, or None if the journal already held it (a redelivery, our own event coming back)."""
    session = uow.session
    first: dict[uuid.UUID, Fact] = {}
    for fact in facts:
        first.setdefault(fact.entry.event_id, fact)
    unique = list(first.values())
    appended = await append_entries(session, [(fact.tenant_id, fact.invoice_id, fact.entry) for fact in unique])
    new = [fact for fact in unique if fact.entry.event_id in appended]
    if not new:
        return [None] * len(facts)
    correlation: dict[Key, str] = {}
    for fact in new:
        correlation.setdefault(fact.key, fact.correlation_id)
    keys = sorted(correlation)
    states = await _lock(session, keys, correlation)
    journals = await _read(session, keys, states)
    stored = {key: state.timer for key, state in states.items()}

    outcome = Outcome(now=now)
    known = {entry.event_id for entries in journals.values() for entry in entries}
    waiting: dict[Key, set[uuid.UUID]] = {key: set() for key in keys}
    for fact in new:  # one pass: a batch holds hundreds of facts over hundreds of invoices
        waiting[fact.key].add(fact.entry.event_id)
    projections: dict[uuid.UUID, Projection] = {}
    for fact in new:  # each fact sees the journal as it would have alone: without the batch's later facts
        pending = waiting[fact.key]
        pending.discard(fact.entry.event_id)
        so_far = [entry for entry in journals[fact.key] if entry.event_id not in pending]
        projections[fact.entry.event_id] = follow(states[fact.key], fact, so_far, windows, known, outcome)

    await _write(session, [states[key] for key in keys],
                 {key: states[key].timer for key in keys if states[key].timer != stored[key]})
    await _publish(uow, outcome)
    return [projections.pop(fact.entry.event_id, None) for fact in facts]


async def _lock(session: AsyncSession, keys: list[Key], correlation: dict[Key, str]) -> dict[Key, InvoiceState]:
    """Lock the batch's invoices in key order, then create the missing ones (as pending, locked by the insert;
    one another transaction created meanwhile is locked after it)."""
    states = await _locked(session, keys)
    missing = [key for key in keys if key not in states]
    if missing:
        created = {(row.tenant_id, row.invoice_id) for row in await session.execute(_CREATE_INVOICES, {
            **_keys(missing), "correlation_ids": [correlation[key] for key in missing]})}
        states.update({key: InvoiceState(tenant_id=key[0], invoice_id=key[1], correlation_id=correlation[key],
                                         status=PENDING, has_summary=False, customer_ref=None) for key in created})
        if raced := [key for key in missing if key not in created]:
            states.update(await _locked(session, raced))
    return states


async def _locked(session: AsyncSession, keys: list[Key]) -> dict[Key, InvoiceState]:
    wanted = set(keys)
    return {(row.tenant_id, row.invoice_id): InvoiceState(
        tenant_id=row.tenant_id, invoice_id=row.invoice_id, correlation_id=row.correlation_id, status=row.status,
        has_summary=row.has_summary, customer_ref=row.customer_ref)
        for row in await session.execute(_LOCK_INVOICES, _among(keys)) if (row.tenant_id, row.invoice_id) in wanted}


async def _read(session: AsyncSession, keys: list[Key], states: dict[Key, InvoiceState]) -> dict[Key, list[Entry]]:
    """The locked invoices' journals (returned), timers and open incidents (into their states)."""
    journals: dict[Key, list[Entry]] = {key: [] for key in keys}
    for row in await session.execute(_READ, _among(keys)):
        key = (row.tenant_id, row.invoice_id)
        if key not in journals:
            continue
        if row.part == "journal":
            journals[key].append(Entry(event_id=row.ref, kind=row.kind, occurred_at=row.at, detail=row.detail))
        elif row.part == "timer":
            states[key].timer = Timer(channel=row.kind, dispatch_id=row.ref, dispatched_at=row.at, proof=row.proof,
                                      expect_by=row.expect_by, fired_at=row.fired_at)
        else:
            states[key].open_incidents[row.kind] = row.ref
    return journals


async def _write(session: AsyncSession, states: list[InvoiceState], timers: dict[Key, Timer | None]) -> None:
    """The invoices' projections, and the timers that changed (the ones no proof is awaited for any more go)."""
    rows = []
    for state in states:
        projection = state.projection
        rows.append(dict(tenant_id=state.tenant_id, invoice_id=state.invoice_id, status=projection.status,
                         code=int(projection.code) if projection.code is not None else None,
                         status_at=projection.status_at, first_dispatched_at=projection.first_dispatched_at,
                         acked_at=projection.acked_at, viewed_at=projection.viewed_at,
                         correlation_id=state.correlation_id, customer_ref=state.customer_ref,
                         **summary_columns(state.summary)))
        rows[-1]["summary"] = _json(rows[-1]["summary"])
    dropped = [key for key, timer in timers.items() if timer is None]
    kept = [dict(tenant_id=key[0], invoice_id=key[1], **vars(timer)) for key, timer in timers.items()
            if timer is not None]
    timer_arrays = _arrays(kept, "tenant_id", "invoice_id", "channel", "dispatch_id", "dispatched_at", "proof",
                           "expect_by", "fired_at")
    await session.execute(_WRITE, {
        **_arrays(rows, "tenant_id", "invoice_id", "status", "code", "status_at", "first_dispatched_at", "acked_at",
                  "viewed_at", "correlation_id", "customer_ref", "summary", "number", "number_key"),
        **{f"timer_{name}": values for name, values in timer_arrays.items()},
        **{f"drop_{name}": values for name, values in _keys(dropped).items()}})


async def _publish(uow: UnitOfWork, outcome: Outcome) -> None:
    """Write the incidents and the verdicts, then publish the events in the order they were raised;
    an incident's event only if its row changed (one opened or resolved meanwhile is left alone)."""
    session, now = uow.session, outcome.now
    written: set[uuid.UUID] = set()
    if outcome.opened:
        rows = [dict(incident_id=incident_id, tenant_id=new.event.tenant_id, invoice_id=new.event.invoice_id,
                     kind=new.event.kind, channel=new.event.channel, evidence=_json(new.evidence),
                     suggested_action=new.suggested_action, resolution=new.resolution,
                     status="open" if new.resolution is None else "resolved")
                for incident_id, new in outcome.opened.items()]
        written |= set((await session.execute(_OPEN_NEW_INCIDENTS, {"now": now, **_arrays(
            rows, "incident_id", "tenant_id", "invoice_id", "kind", "channel", "status", "evidence",
            "suggested_action", "resolution")})).scalars())
    if outcome.resolved:
        written |= set((await session.execute(_RESOLVE_INCIDENTS, {
            "now": now, "incident_ids": list(outcome.resolved), "resolutions": list(outcome.resolved.values())})
        ).scalars())
    events, verdicts = [], [(tenant_id, invoice_id, entry) for tenant_id, invoice_id, entry in outcome.anomalies.values()]
    for event in outcome.events:
        if isinstance(event, IncidentOpened):
            if event.incident_id not in written:
                continue
            verdicts.append((event.tenant_id, event.invoice_id, Entry(
                event_id=event.event_id, kind=INCIDENT_OPENED, occurred_at=now,
                detail={"incident_id": str(event.incident_id), "kind": event.kind, "channel": event.channel,
                        "suggested_action": event.suggested_action})))
        elif isinstance(event, IncidentResolved):
            if event.incident_id not in written:
                continue
            verdicts.append((event.tenant_id, event.invoice_id, Entry(
                event_id=event.event_id, kind=INCIDENT_RESOLVED, occurred_at=now,
                detail={"incident_id": str(event.incident_id), "kind": outcome.resolved_kinds[event.incident_id],
                        "resolution": event.resolution})))
        events.append(event)
    await append_entries(session, verdicts)
    uow.publish(*events)

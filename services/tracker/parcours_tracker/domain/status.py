"""An invoice's status, computed from the set of its journal entries.

Events reach the tracker out of order (different topics, partitions, services), so the
status is never a transition applied to the previous status: it is a pure function of all
the facts, and the same facts give the same status whatever order they arrived in. Time
only enters through each fact's own `occurred_at`, never through its arrival.

Precedence (skeleton; the 2026 lifecycle comes later):

1. Progress. Each fact proves a level; the status is the highest level proven:
       received (1) < queued (2) < dispatched (3) < delivered (4) < viewed (5)
   received = InvoiceReceived; queued = a dispatch requested; dispatched = handed to a
   channel's transport; delivered = a partner acknowledged receipt; viewed = a recipient
   opened the tracked link (any link, an invoice's or a reminder's).
2. Incidents: `unroutable` (router found no channel) and `failed` (a dispatch failed).
   An incident is cleared by a later fact (by occurred_at) that retries the delivery:
   unroutable by any later dispatch request or dispatch; failed by a later dispatch, or a
   later dispatch request of another dispatch (a fallback channel, a re-route).
   The latest uncleared incident wins over progress levels 1-3.
3. Proof of arrival wins over incidents: once delivered or viewed, the invoice stays so.
4. Reminder facts (reminder_due, reminded, reminder_failed, a reminder's dispatch request or
   unroutable) never change the status: it describes the invoice's own delivery.
5. Only reminder facts known (the InvoiceReceived not arrived yet): `pending`.

status_at is when the invoice reached that status: the incident's time, or the earliest fact
proving the level (after the last cleared incident, if any).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from parcours_tracker.domain import journal as k
from parcours_tracker.domain.journal import Entry

PENDING = "pending"
RECEIVED = "received"
QUEUED = "queued"
DISPATCHED = "dispatched"
DELIVERED = "delivered"
VIEWED = "viewed"
UNROUTABLE = "unroutable"
FAILED = "failed"

STATUSES = (PENDING, RECEIVED, QUEUED, DISPATCHED, DELIVERED, VIEWED, UNROUTABLE, FAILED)

_LEVELS = {RECEIVED: 1, QUEUED: 2, DISPATCHED: 3, DELIVERED: 4, VIEWED: 5}
_PROOF_OF_ARRIVAL = _LEVELS[DELIVERED]


@dataclass(frozen=True)
class Projection:
    """What the tracker keeps per invoice besides its journal."""

    status: str
    status_at: datetime | None
    first_dispatched_at: datetime | None
    acked_at: datetime | None
    viewed_at: datetime | None


def _progress_of(entry: Entry) -> str | None:
    """The progress level a fact proves, if any."""
    if entry.kind == k.CLICKED:
        return VIEWED
    if entry.kind == k.ACKED:
        return DELIVERED
    if entry.purpose != "invoice":
        return None
    return {k.RECEIVED: RECEIVED, k.DISPATCH_REQUESTED: QUEUED, k.DISPATCHED: DISPATCHED}.get(entry.kind)


def _incident_of(entry: Entry) -> str | None:
    if entry.purpose != "invoice":
        return None
    return {k.UNROUTABLE: UNROUTABLE, k.DISPATCH_FAILED: FAILED}.get(entry.kind)


def _clears(later: Entry, incident: Entry) -> bool:
    """Whether `later` retries the delivery that `incident` stopped."""
    if later.purpose != "invoice" or later.occurred_at <= incident.occurred_at:
        return False
    if later.kind == k.DISPATCHED:
        return True
    if later.kind != k.DISPATCH_REQUESTED:
        return False
    return incident.kind == k.UNROUTABLE or later.detail.get("dispatch_id") != incident.detail.get("dispatch_id")


def _earliest(entries: Iterable[Entry]) -> datetime | None:
    return min((entry.occurred_at for entry in entries), default=None)


def project(entries: Iterable[Entry]) -> Projection:
    """The status and milestones of an invoice from all its journal entries (any order)."""
    facts = sorted(entries, key=lambda entry: (entry.occurred_at, str(entry.event_id)))
    milestones = dict(
        first_dispatched_at=_earliest(e for e in facts if e.kind == k.DISPATCHED),
        acked_at=_earliest(e for e in facts if e.kind == k.ACKED),
        viewed_at=_earliest(e for e in facts if e.kind == k.CLICKED),
    )
    proofs = [(entry, _progress_of(entry)) for entry in facts]
    proofs = [(entry, level) for entry, level in proofs if level is not None]
    best = max((level for _, level in proofs), key=_LEVELS.__getitem__, default=None)

    incidents = [entry for entry in facts if _incident_of(entry)]
    open_incidents = [i for i in incidents if not any(_clears(later, i) for later in facts)]
    if open_incidents and (best is None or _LEVELS[best] < _PROOF_OF_ARRIVAL):
        incident = open_incidents[-1]
        return Projection(status=_incident_of(incident), status_at=incident.occurred_at, **milestones)
    if best is None:
        return Projection(status=PENDING, status_at=_earliest(facts), **milestones)

    supporting = [entry for entry, level in proofs if level == best]
    after_incidents = [e for e in supporting if not incidents or e.occurred_at >= incidents[-1].occurred_at]
    return Projection(status=best, status_at=_earliest(after_incidents or supporting), **milestones)

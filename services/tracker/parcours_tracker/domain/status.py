"""An invoice's lifecycle status, computed from the set of its journal entries.

Events reach the tracker out of order (different topics, partitions, services), so the
status is never a transition applied to the stored status: it is a pure function of all the
facts, folded in the order they *happened* (`occurred_at`, then event id), so the same facts
give the same status whatever order they arrived in.

Two layers (see the README for the full mapping):

1. Delivery, technical states Parcours needs. Each fact proves a level, the highest wins:
       received (200) < queued (200) < sent (201) < delivered (202)
       < MISE_A_DISPOSITION (203) < viewed (203, a person opened the invoice)
   Delivery incidents `unroutable`, `failed`, `bounced` (a permanent bounce) win over the
   levels below `delivered` until a later fact retries the delivery; proof of arrival
   (delivered and above) wins over any incident. A retry that clears an incident starts the
   delivery levels again from its own (queued or sent). Reminder facts never move the status.
2. Recipient and payment states, the 2026 codes 204-213 (recipient actions, partner statuses,
   payments). Once one applies, it is the status. A transition the lifecycle does not allow
   (approval after payment, refusal of a paid invoice…) is not applied: it is an anomaly.
   Lower delivery facts arriving later never move an invoice back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from parcours_contracts import LifecycleStatus as L
from parcours_tracker.domain import journal as k
from parcours_tracker.domain.journal import Entry

PENDING = "pending"
RECEIVED = "received"
QUEUED = "queued"
SENT = "sent"
DELIVERED = "delivered"
MADE_AVAILABLE = L.MISE_A_DISPOSITION.name
VIEWED = "viewed"
UNROUTABLE = "unroutable"
FAILED = "failed"
BOUNCED = "bounced"

DELIVERY_INCIDENTS = (UNROUTABLE, FAILED, BOUNCED)
_LEVELS = {RECEIVED: 1, QUEUED: 2, SENT: 3, DELIVERED: 4, MADE_AVAILABLE: 5, VIEWED: 6}
BUSINESS = tuple(status.name for status in L if status >= L.PRISE_EN_CHARGE)
STATUSES = (PENDING, RECEIVED, QUEUED, SENT, DELIVERED, MADE_AVAILABLE, VIEWED, *DELIVERY_INCIDENTS, *BUSINESS)

CODES: dict[str, L] = {RECEIVED: L.DEPOSEE, QUEUED: L.DEPOSEE, SENT: L.EMISE, DELIVERED: L.RECUE,
                       MADE_AVAILABLE: L.MISE_A_DISPOSITION, VIEWED: L.MISE_A_DISPOSITION,
                       **{name: L[name] for name in BUSINESS}}

# What a partner's ack status means (Chorus Pro, PDP/AP platforms, EDI). Keys are normalised:
# upper case, '_' for spaces and dashes. Anything else proves technical receipt only (delivered).
PARTNER_STATUSES: dict[str, str] = {
    **{str(status.value): status.name for status in L},
    **{status.name: status.name for status in L},
    "RECEIVED": DELIVERED, "DELIVERED": DELIVERED, "MDN": DELIVERED, "DEPOSEE": DELIVERED, "RECUE": DELIVERED,
    "200": DELIVERED, "201": DELIVERED, "202": DELIVERED, "EMISE": DELIVERED,
    "MADE_AVAILABLE": MADE_AVAILABLE, "AVAILABLE": MADE_AVAILABLE,
    "COMPTABILISEE": L.PRISE_EN_CHARGE.name, "TAKEN_OVER": L.PRISE_EN_CHARGE.name,
    "SERVICE_FAIT": L.APPROUVEE.name, "APPROVED": L.APPROUVEE.name,
    "DISPUTED": L.EN_LITIGE.name, "SUSPENDED": L.SUSPENDUE.name, "REFUSED": L.REFUSEE.name,
    "MANDATEE": L.PAIEMENT_TRANSMIS.name, "MISE_EN_PAIEMENT": L.PAIEMENT_TRANSMIS.name,
    "PAID": L.ENCAISSEE.name, "REJECTED": L.REJETEE.name,
    # Peppol BIS Invoice Response (UNCL4343 response codes), as AP platforms relay them. PD is the buyer
    # saying it paid: transmitted, not yet on the account. UQ asks for information: suspended until completed.
    "AB": DELIVERED, "IP": L.PRISE_EN_CHARGE.name, "UQ": L.SUSPENDUE.name, "CA": L.APPROUVEE_PARTIELLEMENT.name,
    "RE": L.REFUSEE.name, "AP": L.APPROUVEE.name, "PD": L.PAIEMENT_TRANSMIS.name,
}

ACTION_STATUSES: dict[str, str | None] = {
    "taken_over": L.PRISE_EN_CHARGE.name, "approved": L.APPROUVEE.name,
    "partially_approved": L.APPROUVEE_PARTIELLEMENT.name, "disputed": L.EN_LITIGE.name,
    "suspended": L.SUSPENDUE.name, "completed": L.COMPLETEE.name, "refused": L.REFUSEE.name,
    "promise_to_pay": None,  # no code of its own: checked, never a status
}

_DELIVERY = None  # no recipient/payment status yet: any delivery state
_ALLOWED_FROM: dict[str | None, set[str | None]] = {
    L.PRISE_EN_CHARGE.name: {_DELIVERY},
    L.APPROUVEE.name: {_DELIVERY, "PRISE_EN_CHARGE", "APPROUVEE_PARTIELLEMENT", "EN_LITIGE", "SUSPENDUE", "COMPLETEE"},
    L.APPROUVEE_PARTIELLEMENT.name: {_DELIVERY, "PRISE_EN_CHARGE", "EN_LITIGE", "SUSPENDUE", "COMPLETEE"},
    L.EN_LITIGE.name: {_DELIVERY, "PRISE_EN_CHARGE", "APPROUVEE", "APPROUVEE_PARTIELLEMENT", "SUSPENDUE", "COMPLETEE"},
    L.SUSPENDUE.name: {_DELIVERY, "PRISE_EN_CHARGE", "EN_LITIGE", "COMPLETEE"},
    L.COMPLETEE.name: {"SUSPENDUE"},
    L.REFUSEE.name: {_DELIVERY, "PRISE_EN_CHARGE", "EN_LITIGE", "SUSPENDUE", "COMPLETEE"},
    L.PAIEMENT_TRANSMIS.name: {_DELIVERY, "PRISE_EN_CHARGE", "APPROUVEE", "APPROUVEE_PARTIELLEMENT", "EN_LITIGE",
                               "SUSPENDUE", "COMPLETEE"},
    L.ENCAISSEE.name: {_DELIVERY, "PRISE_EN_CHARGE", "APPROUVEE", "APPROUVEE_PARTIELLEMENT", "EN_LITIGE",
                       "SUSPENDUE", "COMPLETEE", "PAIEMENT_TRANSMIS"},
    L.REJETEE.name: {_DELIVERY},
    None: {_DELIVERY, "PRISE_EN_CHARGE", "APPROUVEE", "APPROUVEE_PARTIELLEMENT", "EN_LITIGE", "SUSPENDUE",
           "COMPLETEE"},  # a promise to pay
}


def partner_status(raw: str) -> str:
    """The status a partner's ack status means (delivered when we do not know the word)."""
    return PARTNER_STATUSES.get(raw.strip().upper().replace("-", "_").replace(" ", "_"), DELIVERED)


def allows(current_business: str | None, target: str | None) -> bool:
    """Whether a recipient/payment signal towards `target` (None: a promise) makes sense now."""
    return current_business in _ALLOWED_FROM[target]


@dataclass(frozen=True)
class Anomaly:
    """A fact whose transition the lifecycle refused: recorded, not applied."""

    event_id: UUID
    kind: str
    at: datetime
    from_status: str
    to_status: str | None

    def detail(self) -> dict:
        return {"fact_event_id": str(self.event_id), "fact_kind": self.kind, "from_status": self.from_status,
                "to_status": self.to_status or "promise_to_pay",
                "reason": f"{self.kind} is not a possible transition from {self.from_status}"}


@dataclass(frozen=True)
class Projection:
    """What the tracker keeps per invoice besides its journal."""

    status: str
    status_at: datetime | None
    first_dispatched_at: datetime | None
    acked_at: datetime | None
    viewed_at: datetime | None
    level: str | None = None  # highest delivery level proven (even when a later status hides it)
    incident: Entry | None = None  # the open delivery incident's fact, if it is the status
    source: str | None = None  # who caused the status: a channel, "api", "tracker"
    reason: str | None = None
    anomalies: tuple[Anomaly, ...] = field(default=())

    @property
    def code(self) -> L | None:
        return CODES.get(self.status)

    @property
    def business(self) -> bool:
        return self.status in BUSINESS


def _progress_of(entry: Entry) -> str | None:
    """The delivery level a fact proves, if any."""
    if entry.kind == k.CLICKED:
        return VIEWED
    if entry.kind == k.ACKED:
        level = partner_status(entry.detail.get("status", ""))
        return level if level in _LEVELS else DELIVERED  # a business status proves receipt too
    if entry.purpose != "invoice":
        return None
    return {k.RECEIVED: RECEIVED, k.DISPATCH_REQUESTED: QUEUED, k.DISPATCHED: SENT}.get(entry.kind)


def _incident_of(entry: Entry) -> str | None:
    if entry.purpose != "invoice":
        return None
    if entry.kind == k.BOUNCED:
        return BOUNCED if entry.detail.get("permanent", True) else None
    return {k.UNROUTABLE: UNROUTABLE, k.DISPATCH_FAILED: FAILED}.get(entry.kind)


def _target_of(entry: Entry) -> tuple[bool, str | None]:
    """(is a recipient/payment signal, the status it asks for; None for a promise)."""
    if entry.kind == k.ACKED:
        status = partner_status(entry.detail.get("status", ""))
        return (True, status) if status in BUSINESS else (False, None)
    if entry.kind in ACTION_STATUSES:
        return True, ACTION_STATUSES[entry.kind]
    if entry.kind == k.PAYMENT and entry.detail.get("fully_paid"):
        settled = entry.detail.get("all_received")
        return True, L.ENCAISSEE.name if settled else L.PAIEMENT_TRANSMIS.name
    return False, None


def _clears(later: Entry, incident: Entry) -> bool:
    """Whether `later` retries the delivery that `incident` stopped."""
    if later.purpose != "invoice" or later.occurred_at <= incident.occurred_at:
        return False
    if later.kind not in (k.DISPATCHED, k.DISPATCH_REQUESTED):
        return False
    if incident.kind == k.UNROUTABLE or (incident.kind == k.DISPATCH_FAILED and later.kind == k.DISPATCHED):
        return True
    return later.detail.get("dispatch_id") != incident.detail.get("dispatch_id")


def _source_of(entry: Entry) -> str:
    if entry.kind in ACTION_STATUSES or entry.kind == k.PAYMENT:
        return entry.detail.get("source", "api")
    return entry.detail.get("channel") or "tracker"


def _reason_of(entry: Entry) -> str | None:
    for key in ("reason", "diagnostic", "status"):
        if entry.detail.get(key):
            return str(entry.detail[key])[:2000]
    return None


def _earliest(entries: Iterable[Entry]) -> datetime | None:
    return min((entry.occurred_at for entry in entries), default=None)


def project(entries: Iterable[Entry]) -> Projection:
    """The status and milestones of an invoice from all its journal entries (any order)."""
    facts = sorted((e for e in entries if e.kind not in k.VERDICTS), key=lambda e: (e.occurred_at, str(e.event_id)))
    level: str | None = None
    incident: Entry | None = None
    business: str | None = None
    status, status_at, source, reason = PENDING, None, None, None
    anomalies: list[Anomaly] = []
    for entry in facts:
        proven = _progress_of(entry)
        arrived = level is not None and _LEVELS[level] >= _LEVELS[DELIVERED]
        if incident is not None and _clears(entry, incident):
            incident = None
            if not arrived:  # a new attempt: the stopped one's progress proves nothing now
                level = None
        if proven and (level is None or _LEVELS[proven] > _LEVELS[level]):
            level = proven
        if _incident_of(entry):
            incident = entry
        is_signal, target = _target_of(entry)
        if is_signal and target != business:
            if allows(business, target):
                business = target or business
            else:
                anomalies.append(Anomaly(entry.event_id, entry.kind, entry.occurred_at, status, target))
        arrived = level is not None and _LEVELS[level] >= _LEVELS[DELIVERED]
        if business:
            current = business
        elif incident is not None and not arrived:
            current = _incident_of(incident)
        else:
            current = level or PENDING
        if current != status:
            status, status_at, source, reason = current, entry.occurred_at, _source_of(entry), _reason_of(entry)
    if status == PENDING:
        status_at = _earliest(facts)
    open_incident = incident if status in DELIVERY_INCIDENTS else None
    return Projection(
        status=status, status_at=status_at,
        first_dispatched_at=_earliest(e for e in facts if e.kind == k.DISPATCHED),
        acked_at=_earliest(e for e in facts if e.kind == k.ACKED),
        viewed_at=_earliest(e for e in facts if e.kind == k.CLICKED),
        level=level, incident=open_incident, source=source, reason=reason, anomalies=tuple(anomalies))


def level_reached(projection: Projection, level: str) -> bool:
    """Whether the invoice proved at least `level` (a recipient or payment status proves everything)."""
    if projection.business and projection.status != L.REJETEE.name:
        return True
    return projection.level is not None and _LEVELS[projection.level] >= _LEVELS[level]

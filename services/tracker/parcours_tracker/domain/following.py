"""What one more fact does to an invoice besides its journal entry: the projection, the lifecycle
event, the anomalies, the receipt timer, and the incidents it opens or resolves. No IO: the store
reads the invoices of a batch once, folds their new facts here one by one, in the order they
came, and writes the outcome in a few set-based statements."""

from __future__ import annotations

import uuid
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from parcours_contracts import IncidentOpened, IncidentResolved, InvoiceLifecycleChanged, InvoiceSummary
from parcours_contracts.events import EventEnvelope
from parcours_tracker.domain import incidents as rules
from parcours_tracker.domain.journal import ANOMALY, RECEIVED, Entry
from parcours_tracker.domain.payments import number_key
from parcours_tracker.domain.status import DELIVERY_INCIDENTS, Projection, project

_ANOMALY_NAMESPACE = uuid.UUID("3b1f8a0e-1c55-4f0e-8f4e-9d6a2c7b5e21")


@dataclass(frozen=True)
class Fact:
    """A journal entry to record for an invoice, with what its event says about the invoice."""

    tenant_id: str
    invoice_id: uuid.UUID
    correlation_id: str
    entry: Entry
    summary: InvoiceSummary | None = None
    customer_ref: str | None = None

    @property
    def key(self) -> tuple[str, uuid.UUID]:
        return self.tenant_id, self.invoice_id


@dataclass(frozen=True)
class Timer:
    """An invoice's receipt timer as stored (`receipt_timers`)."""

    channel: str
    dispatch_id: uuid.UUID | None
    dispatched_at: datetime
    proof: str
    expect_by: datetime
    fired_at: datetime | None = None


def next_timer(current: Timer | None, expectation: rules.Expectation | None) -> Timer | None:
    """The timer once in line with the proof awaited: none without one; a timer that already fired
    for the same dispatch stays fired (no second alarm); a new dispatch or deadline starts anew."""
    if expectation is None:
        return None
    if (current is None or current.dispatch_id != expectation.dispatch_id
            or (current.fired_at is None and current.expect_by != expectation.expect_by)):
        return Timer(channel=expectation.channel, dispatch_id=expectation.dispatch_id,
                     dispatched_at=expectation.dispatched_at, proof=expectation.proof,
                     expect_by=expectation.expect_by)
    return current


@dataclass
class InvoiceState:
    """An invoice as the batch found it (locked), then as each of its new facts leaves it."""

    tenant_id: str
    invoice_id: uuid.UUID
    correlation_id: str
    status: str
    has_summary: bool
    customer_ref: str | None
    timer: Timer | None = None
    open_incidents: dict[str, uuid.UUID] = field(default_factory=dict)  # kind → incident id
    summary: InvoiceSummary | None = None  # the summary this batch sets, if any
    projection: Projection | None = None

    @property
    def keys(self) -> dict[str, Any]:
        return dict(tenant_id=self.tenant_id, invoice_id=self.invoice_id)


@dataclass(frozen=True)
class NewIncident:
    """An incident a fact opened; `resolution` when a later fact of the same batch settled it."""

    event: IncidentOpened
    suggested_action: str
    evidence: dict
    resolution: str | None = None


@dataclass
class Outcome:
    """What a batch of facts changes besides the journal entries and the invoice rows."""

    now: datetime
    # Events in the order they are raised; an incident's event only goes out if its row was written.
    events: list[EventEnvelope] = field(default_factory=list)
    anomalies: dict[uuid.UUID, tuple[str, uuid.UUID, Entry]] = field(default_factory=dict)  # verdict id → row
    opened: dict[uuid.UUID, NewIncident] = field(default_factory=dict)
    resolved: dict[uuid.UUID, str] = field(default_factory=dict)  # incidents open before the batch → resolution
    resolved_kinds: dict[uuid.UUID, str] = field(default_factory=dict)

    def resolve(self, state: InvoiceState, kind: str, resolution: str) -> None:
        incident_id = state.open_incidents.pop(kind)
        if incident_id in self.opened:
            self.opened[incident_id] = _settled(self.opened[incident_id], resolution)
        else:
            self.resolved[incident_id] = resolution
        self.resolved_kinds[incident_id] = kind
        self.events.append(IncidentResolved(tenant_id=state.tenant_id, invoice_id=state.invoice_id,
                                            correlation_id=state.correlation_id, occurred_at=self.now,
                                            incident_id=incident_id, resolution=resolution))

    def open(self, state: InvoiceState, draft: rules.IncidentDraft) -> None:
        event = IncidentOpened(tenant_id=state.tenant_id, invoice_id=state.invoice_id,
                               correlation_id=state.correlation_id, occurred_at=self.now, incident_id=uuid.uuid4(),
                               kind=draft.kind, channel=draft.channel, evidence=draft.evidence,
                               suggested_action=draft.suggested_action)
        state.open_incidents[draft.kind] = event.incident_id
        self.opened[event.incident_id] = NewIncident(event=event, suggested_action=draft.suggested_action,
                                                     evidence=draft.evidence)
        self.events.append(event)


def _settled(incident: NewIncident, resolution: str) -> NewIncident:
    return NewIncident(event=incident.event, suggested_action=incident.suggested_action,
                       evidence=incident.evidence, resolution=resolution)


@dataclass(frozen=True)
class Windows:
    """How long each channel has to prove receipt, on which calendar."""

    windows: dict[str, rules.ReceiptWindow]
    holidays: Container[date] = ()


def follow(state: InvoiceState, fact: Fact, facts: list[Entry], windows: Windows, known: Container[uuid.UUID],
           outcome: Outcome) -> Projection:
    """Fold `fact` (already among `facts`, the invoice's journal so far) into `state` and `outcome`:
    the projection, the lifecycle event if the status moved, new anomalies (`known`: verdict ids
    already journaled), the timer, the incidents."""
    entry = fact.entry
    projection = project(facts)
    if entry.kind == RECEIVED:  # a click may have created the row first, with the invoice id as correlation
        state.correlation_id = fact.correlation_id
    # InvoiceReceived is authoritative for the summary; a dispatch or reminder's copy fills in until it arrives.
    if fact.summary is not None and (not state.has_summary or entry.kind == RECEIVED):
        state.summary, state.has_summary, state.customer_ref = fact.summary, True, fact.summary.customer_ref
    elif fact.customer_ref is not None and state.customer_ref is None:
        state.customer_ref = fact.customer_ref
    if projection.status != state.status:
        outcome.events.append(InvoiceLifecycleChanged(
            **state.keys, correlation_id=state.correlation_id, status=projection.status, code=projection.code,
            previous_status=state.status, source=(projection.source or "tracker")[:64], reason=projection.reason,
            status_at=projection.status_at))
    state.status, state.projection = projection.status, projection
    for anomaly in projection.anomalies:
        verdict_id = uuid.uuid5(_ANOMALY_NAMESPACE, str(anomaly.event_id))
        if verdict_id not in known:
            outcome.anomalies.setdefault(verdict_id, (state.tenant_id, state.invoice_id, Entry(
                event_id=verdict_id, kind=ANOMALY, occurred_at=anomaly.at, detail=anomaly.detail())))
    _follow_incidents(state, entry, facts, projection, windows, outcome)
    return projection


def _follow_incidents(state: InvoiceState, entry: Entry, facts: list[Entry], projection: Projection,
                      windows: Windows, outcome: Outcome) -> None:
    """Keep the receipt timer on the proof still awaited, resolve the incidents later facts settled,
    open the one a new delivery-incident fact shows."""
    expectation = rules.awaited_proof(facts, projection, windows.windows, windows.holidays)
    state.timer = next_timer(state.timer, expectation)
    already_open = set(state.open_incidents)
    draft = rules.from_delivery_incident(projection.incident) if projection.incident is not None else None
    for kind in sorted(already_open & set(DELIVERY_INCIDENTS)):
        if draft is None or kind != draft.kind:
            outcome.resolve(state, kind, f"settled by a later signal: the invoice is now {projection.status}")
    if draft is not None and projection.incident.event_id == entry.event_id and draft.kind not in already_open:
        outcome.open(state, draft)
    if expectation is None and rules.NOT_RECEIVED in already_open:
        outcome.resolve(state, rules.NOT_RECEIVED,
                        f"the awaited signal arrived late: the invoice is now {projection.status}"
                        if projection.incident is None else f"superseded by the {projection.status} incident")


def summary_columns(summary: InvoiceSummary | None) -> dict[str, Any]:
    """The invoice columns a summary sets (None: leave them)."""
    if summary is None:
        return dict(summary=None, number=None, number_key=None)
    return dict(summary=summary.model_dump(mode="json"), number=summary.number, number_key=number_key(summary.number))

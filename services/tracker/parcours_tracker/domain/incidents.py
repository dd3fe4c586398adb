"""When an invoice has not reached its customer: receipt windows per channel, the deadline
of the proof we await, and what an incident says (evidence, suggested action). No IO."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from parcours_tracker.domain import journal as k
from parcours_tracker.domain import status as s
from parcours_tracker.domain.journal import Entry

NOT_RECEIVED = "not_received"
KINDS = (NOT_RECEIVED, s.UNROUTABLE, s.FAILED, s.BOUNCED)

# The proof a channel owes us, as the delivery level that shows it.
PROOF_LEVELS = {"view": s.VIEWED, "ack": s.DELIVERED, "made_available": s.MADE_AVAILABLE}


class ReceiptWindow(BaseModel):
    """How long a channel has to prove receipt: `hours`, or `business_days` (Mon-Fri, no holidays)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: float | None = Field(default=None, gt=0)
    business_days: int | None = Field(default=None, ge=1)
    proof: Literal["view", "ack", "made_available"] = "ack"

    @model_validator(mode="after")
    def _one_length(self):
        if (self.hours is None) == (self.business_days is None):
            raise ValueError("give exactly one of hours or business_days")
        return self

    def deadline(self, since: datetime, holidays: Container[date] = ()) -> datetime:
        if self.hours is not None:
            return since + timedelta(hours=self.hours)
        return add_business_days(since, self.business_days or 0, holidays)


DEFAULT_WINDOWS = {
    "email_link": ReceiptWindow(business_days=2, proof="view"),
    "edi": ReceiptWindow(hours=1, proof="ack"),
    "chorus_pro": ReceiptWindow(hours=24, proof="made_available"),
    "ap_platform": ReceiptWindow(hours=4, proof="ack"),
}


def add_business_days(start: datetime, days: int, holidays: Container[date] = ()) -> datetime:
    """The same time of day `days` working days later (weekends and `holidays` do not count)."""
    moment = start
    while days > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5 and moment.date() not in holidays:
            days -= 1
    return moment


@dataclass(frozen=True)
class Expectation:
    """A proof of receipt we are waiting for, and until when."""

    channel: str
    dispatch_id: UUID | None
    dispatched_at: datetime
    expect_by: datetime
    proof: str


def awaited_proof(facts: list[Entry], projection: s.Projection, windows: dict[str, ReceiptWindow],
                  holidays: Container[date] = ()) -> Expectation | None:
    """The proof the invoice's latest dispatch still owes, or None (proven, in incident, no window)."""
    if projection.incident is not None or projection.status == s.L.REJETEE.name:
        return None  # a delivery incident is already open: no second alarm for the same invoice
    dispatches = sorted((e for e in facts if e.kind == k.DISPATCHED), key=lambda e: e.occurred_at)
    if not dispatches:
        return None
    latest = dispatches[-1]
    window = windows.get(latest.detail.get("channel", ""))
    if window is None or s.level_reached(projection, PROOF_LEVELS[window.proof]):
        return None
    dispatch_id = latest.detail.get("dispatch_id")
    return Expectation(channel=latest.detail["channel"], dispatch_id=UUID(dispatch_id) if dispatch_id else None,
                       dispatched_at=latest.occurred_at, expect_by=window.deadline(latest.occurred_at, holidays),
                       proof=window.proof)


@dataclass(frozen=True)
class IncidentDraft:
    """What an incident to open says."""

    kind: str
    channel: str | None
    evidence: dict
    suggested_action: str


def from_delivery_incident(fact: Entry) -> IncidentDraft | None:
    """The incident a delivery incident fact opens; None when Parcours still retries by itself."""
    detail = fact.detail
    if fact.kind == k.DISPATCH_FAILED and (not detail.get("permanent", True) or detail.get("fallback_channels")):
        return None  # channels retries, or router moves to the next channel
    kind = {k.UNROUTABLE: s.UNROUTABLE, k.DISPATCH_FAILED: s.FAILED, k.BOUNCED: s.BOUNCED}[fact.kind]
    suggested = {s.UNROUTABLE: "complete_directory", s.FAILED: "other_channel", s.BOUNCED: "fix_address"}[kind]
    evidence = {"fact_event_id": str(fact.event_id), "at": fact.occurred_at.isoformat(), **detail}
    return IncidentDraft(kind=kind, channel=detail.get("channel"), evidence=evidence, suggested_action=suggested)


def not_received(expectation: Expectation, now: datetime) -> IncidentDraft:
    """The incident of a proof that did not come in time."""
    action = "call" if expectation.proof == "view" else "resend"
    evidence = {"dispatch_id": str(expectation.dispatch_id) if expectation.dispatch_id else None,
                "dispatched_at": expectation.dispatched_at.isoformat(), "expect_by": expectation.expect_by.isoformat(),
                "awaited": expectation.proof, "noticed_at": now.isoformat()}
    return IncidentDraft(kind=NOT_RECEIVED, channel=expectation.channel, evidence=evidence, suggested_action=action)

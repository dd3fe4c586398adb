"""Recording a recipient action: a journal fact, the lifecycle it moves, the promise it publishes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from parcours_contracts import PaymentPromised
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.actions import PROMISE
from parcours_tracker.domain.status import Projection
from parcours_tracker.store import journeys
from parcours_tracker.store.journeys import Tracking


def anomaly_of(entry: journal.Entry, projection: Projection) -> dict | None:
    """The anomaly the lifecycle journaled for this entry (it was refused), if any."""
    return next((a.detail() for a in projection.anomalies if a.event_id == entry.event_id), None)


async def record_action(uow: UnitOfWork, tracking: Tracking, *, tenant_id: str, invoice_id: uuid.UUID,
                        correlation_id: str, event_id: uuid.UUID, kind: str, occurred_at: datetime,
                        detail: dict[str, Any], source: str, promised_on: date | None = None,
                        amount: Decimal | None = None) -> tuple[journal.Entry, Projection | None]:
    """Journal the action and re-project; an applied promise publishes PaymentPromised. The
    projection is None when the journal already held `event_id` (a redelivery)."""
    entry = journal.Entry(event_id=event_id, kind=kind, occurred_at=occurred_at, detail=detail | {"source": source})
    projection = await journeys.record(uow, tracking, tenant_id=tenant_id, invoice_id=invoice_id,
                                       correlation_id=correlation_id, entry=entry)
    if projection is not None and kind == PROMISE and anomaly_of(entry, projection) is None:
        uow.publish(PaymentPromised(tenant_id=tenant_id, invoice_id=invoice_id, correlation_id=correlation_id,
                                    occurred_at=occurred_at, promised_on=promised_on, amount=amount, source=source))
    return entry, projection

"""Invoice journeys and the invoice list (JSON, and a CSV export)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from parcours_runtime.problems import Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_tracker.domain import journal
from parcours_tracker.domain.export import COLUMNS, safe_cell
from parcours_tracker.domain.status import STATUSES
from parcours_tracker.store import journeys
from parcours_tracker.store.models import Invoice

router = APIRouter(tags=["invoices"])
EXPORT_BATCH = 500


class JourneyEvent(BaseModel):
    kind: str = Field(description="One of: " + ", ".join(journal.KINDS))
    at: datetime
    event_id: UUID
    detail: dict[str, Any]


class InvoiceItem(BaseModel):
    invoice_id: UUID
    number: str | None = Field(description="Null until the InvoiceReceived (or a dispatch) reached the tracker.")
    customer_ref: str | None
    status: str = Field(description="One of: " + ", ".join(STATUSES))
    code: int | None = Field(description="The 2026 lifecycle code of the status (200-213), if it has one.")
    status_at: datetime | None
    first_dispatched_at: datetime | None
    acked_at: datetime | None
    viewed_at: datetime | None


class Journey(InvoiceItem):
    events: list[JourneyEvent] = Field(description="Ordered by when each thing happened.")


class InvoicePage(BaseModel):
    items: list[InvoiceItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


def _item(invoice: Invoice) -> dict[str, Any]:
    return dict(invoice_id=invoice.invoice_id, number=invoice.number, customer_ref=invoice.customer_ref,
                status=invoice.status, code=invoice.code, status_at=invoice.status_at,
                first_dispatched_at=invoice.first_dispatched_at, acked_at=invoice.acked_at,
                viewed_at=invoice.viewed_at)


@router.get("/v1/invoices/{invoice_id}/journey", response_model=Journey, summary="An invoice's journey")
async def get_journey(invoice_id: UUID, request: Request, tenant: Tenant = Depends(authenticate)) -> Journey:
    """Everything the tracker knows about one of the tenant's invoices, in the order it happened."""
    async with request.app.state.ctx.sessions() as session:
        # One snapshot for both reads: the status always matches the events listed with it.
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        invoice = await journeys.find_invoice(session, tenant_id=tenant.id, invoice_id=invoice_id)
        if invoice is None:
            raise Problem(404, "No such invoice.")
        entries = await journeys.entries_of(session, tenant_id=tenant.id, invoice_id=invoice_id)
    events = [JourneyEvent(kind=e.kind, at=e.occurred_at, event_id=e.event_id, detail=e.detail) for e in entries]
    return Journey(**_item(invoice), events=events)


def _query_problem(name: str, detail: str) -> Problem:
    return Problem(422, detail, errors=[{**field_error([name], detail.lower().rstrip(".")), "in": "query"}])


def _position(cursor: str | None) -> int | None:
    """The keyset position of a cursor."""
    if cursor is None:
        return None
    if not cursor.isascii() or not cursor.isdigit():
        raise _query_problem("cursor", "Invalid cursor.")
    return int(cursor)


class InvoiceFilters:
    """The filters of the list and of its CSV export (query parameters)."""

    def __init__(
        self,
        status: str | None = Query(default=None, description="One of: " + ", ".join(STATUSES)),
        customer: str | None = Query(default=None, max_length=200, description="The tenant's customer reference."),
        since: AwareDatetime | None = Query(default=None, description=(
            "Only the invoices the tracker learned something about at or after this instant (ISO 8601 with a UTC "
            "offset). A poller passes the time of its previous poll minus a few seconds: a change is stamped when "
            "its transaction starts, which may be a little before it becomes visible.")),
    ):
        if status is not None and status not in STATUSES:
            raise _query_problem("status", "Unknown status.")
        self.status, self.customer, self.since = status, customer, since

    def of(self, tenant: Tenant) -> dict[str, Any]:
        """The arguments of `journeys.list_invoices` for `tenant`."""
        return dict(tenant_id=tenant.id, status=self.status, customer_ref=self.customer, changed_since=self.since)


@router.get("/v1/invoices", response_model=InvoicePage, summary="The tenant's tracked invoices")
async def list_invoices(
    request: Request,
    tenant: Tenant = Depends(authenticate),
    filters: InvoiceFilters = Depends(),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=20),
) -> InvoicePage:
    """The tenant's invoices, newest first, filtered by status, customer and last change (keyset pagination:
    pass `next_cursor` back with the same filters)."""
    before = _position(cursor)
    async with request.app.state.ctx.sessions() as session:
        rows = await journeys.list_invoices(session, **filters.of(tenant), before_seq=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return InvoicePage(items=[InvoiceItem(**_item(row)) for row in rows],
                       next_cursor=str(rows[-1].seq) if more else None)


@router.get("/v1/invoices.csv", summary="The tenant's tracked invoices as CSV",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def export_invoices(
    request: Request,
    tenant: Tenant = Depends(authenticate),
    filters: InvoiceFilters = Depends(),
) -> StreamingResponse:
    """Every invoice of the list's filters, newest first; cells that could run as formulas are neutralised."""
    sessions = request.app.state.ctx.sessions

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        before = None
        while True:
            async with sessions() as session:
                rows = await journeys.list_invoices(session, **filters.of(tenant), before_seq=before,
                                                    limit=EXPORT_BATCH)
            for row in rows:
                item = _item(row)
                writer.writerow([safe_cell(item[column]) for column in COLUMNS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(rows) < EXPORT_BATCH:
                return
            before = rows[-1].seq

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="invoices.csv"'})

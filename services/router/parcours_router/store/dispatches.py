"""The router's memory of its routing decisions: what it asked each dispatch to deliver,
so that a permanent failure can be retried on the next channel with the same content."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime, String, Uuid, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_contracts import DispatchRequested
from parcours_router.store.base import Base


class Dispatch(Base):
    __tablename__ = "dispatches"

    dispatch_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    invoice_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    channel: Mapped[str] = mapped_column(String(64))
    fallback_channels: Mapped[list[str]] = mapped_column(JSONB)
    recipients: Mapped[list[dict]] = mapped_column(JSONB)
    purpose: Mapped[str] = mapped_column(String(16))
    reminder: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    invoice: Mapped[dict] = mapped_column(JSONB)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # A curative reminder's penalties, so that a fallback dispatch states them too.
    penalties: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set once a permanent failure of this dispatch was acted on, so a repeated report acts once.
    failure_handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Recipients whose message came back for good (lower-cased); None until the first bounce.
    bounced_recipients: Mapped[list[str] | None] = mapped_column(JSONB, nullable=True)


_JSON_FIELDS = ("fallback_channels", "recipients", "reminder", "invoice", "penalties")
_FIELDS = ("dispatch_id", "tenant_id", "invoice_id", "channel", "purpose", "language", *_JSON_FIELDS)
# From arrays: one statement text (one prepared plan) whatever the number of dispatches.
_RECORD = text("""
    INSERT INTO dispatches (dispatch_id, tenant_id, invoice_id, channel, purpose, language, fallback_channels,
                            recipients, reminder, invoice, penalties)
    SELECT d, t, i, c, p, l, CAST(f AS jsonb), CAST(r AS jsonb), CAST(m AS jsonb), CAST(v AS jsonb), CAST(n AS jsonb)
    FROM unnest(CAST(:dispatch_id AS uuid[]), CAST(:tenant_id AS text[]), CAST(:invoice_id AS uuid[]),
                CAST(:channel AS text[]), CAST(:purpose AS text[]), CAST(:language AS text[]),
                CAST(:fallback_channels AS text[]), CAST(:recipients AS text[]), CAST(:reminder AS text[]),
                CAST(:invoice AS text[]), CAST(:penalties AS text[])) AS dispatch(d, t, i, c, p, l, f, r, m, v, n)""")


async def record_dispatches(session: AsyncSession, *, requests: Sequence[DispatchRequested]) -> None:
    """Remember the dispatches the router is about to request, in one statement."""
    if not requests:
        return
    columns: dict[str, list] = {field: [] for field in _FIELDS}
    for request in requests:
        data = request.model_dump(mode="json", include=set(_JSON_FIELDS))
        for field in ("dispatch_id", "tenant_id", "invoice_id", "channel", "purpose", "language"):
            columns[field].append(getattr(request, field))
        for field in _JSON_FIELDS:
            columns[field].append(None if data[field] is None else json.dumps(data[field]))
    await session.execute(_RECORD, columns)


async def lock_dispatch(session: AsyncSession, *, tenant_id: str, dispatch_id: UUID) -> Dispatch | None:
    """The tenant's dispatch `dispatch_id`, locked for this transaction, if the router requested it."""
    return (await session.scalars(
        select(Dispatch).where(Dispatch.dispatch_id == dispatch_id, Dispatch.tenant_id == tenant_id)
        .with_for_update()
    )).first()


async def last_invoice_dispatch(session: AsyncSession, *, tenant_id: str, invoice_id: UUID) -> Dispatch | None:
    """The last dispatch the router requested to deliver this invoice (not a reminder), if any."""
    return (await session.scalars(
        select(Dispatch).where(Dispatch.invoice_id == invoice_id, Dispatch.tenant_id == tenant_id,
                               Dispatch.purpose == "invoice").order_by(Dispatch.created_at.desc()).limit(1)
    )).first()


def mark_failure_handled(dispatch: Dispatch) -> None:
    """Remember that this dispatch's permanent failure was acted on."""
    dispatch.failure_handled_at = func.now()


def note_bounce(dispatch: Dispatch, recipient: str) -> list[str]:
    """Remember that `recipient`'s message bounced for good; returns every recipient bounced so far."""
    bounced = list(dispatch.bounced_recipients or [])
    if recipient.lower() not in bounced:
        bounced.append(recipient.lower())
    dispatch.bounced_recipients = bounced  # a new list: JSONB columns do not track in-place changes
    return bounced

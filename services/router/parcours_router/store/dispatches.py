"""The router's memory of its routing decisions: what it asked each dispatch to deliver,
so that a permanent failure can be retried on the next channel with the same content."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime, String, Uuid, func, select
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


async def record_dispatch(session: AsyncSession, *, request: DispatchRequested) -> None:
    """Remember a dispatch the router is about to request."""
    data = request.model_dump(mode="json")
    session.add(Dispatch(
        dispatch_id=request.dispatch_id, tenant_id=request.tenant_id, invoice_id=request.invoice_id,
        channel=request.channel, fallback_channels=data["fallback_channels"], recipients=data["recipients"],
        purpose=request.purpose, reminder=data["reminder"], invoice=data["invoice"],
        language=request.language, penalties=data["penalties"],
    ))
    await session.flush()


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

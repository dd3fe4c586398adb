"""Dispatches waiting on deferred retries: the request as it came (to render the message again
and to report the outcome once every recipient is settled), the recipients refused for good
before the deferral, and the ledger rows' schedule (`sends.next_attempt_at`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime, Row, String, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_channels.store.base import Base
from parcours_channels.store.sends import FAILED, SENDING, Send

_ERROR_MAX = 2000  # sends.last_error's limit


class DeferredDispatch(Base):
    __tablename__ = "deferred_dispatches"

    dispatch_id: Mapped[UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict] = mapped_column(JSONB)  # the DispatchRequested, as JSON
    refused: Mapped[dict] = mapped_column(JSONB)  # recipient → why, refused for good before the deferral
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _clip(error: str) -> str:
    return error if len(error) <= _ERROR_MAX else error[:_ERROR_MAX - 1] + "…"


async def defer(session: AsyncSession, *, tenant_id: str, dispatch_id: UUID, request: dict, refused: dict[str, str],
                put_off: dict[str, tuple[datetime, str]]) -> None:
    """Hand the recipients `put_off` (recipient → (next attempt, why)) to the deferred retries."""
    statement = insert(DeferredDispatch).values(dispatch_id=dispatch_id, tenant_id=tenant_id, request=request,
                                                refused=refused)
    await session.execute(statement.on_conflict_do_update(
        index_elements=[DeferredDispatch.dispatch_id],
        set_={"refused": DeferredDispatch.refused.op("||")(statement.excluded.refused)},
    ))
    for recipient, (next_attempt_at, error) in put_off.items():
        await session.execute(
            update(Send)
            .where(Send.tenant_id == tenant_id, Send.dispatch_id == dispatch_id, Send.recipient == recipient,
                   Send.state == SENDING)
            .values(next_attempt_at=next_attempt_at, last_error=_clip(error), updated_at=func.now()))


async def lease_due(session: AsyncSession, *, now: datetime, until: datetime, limit: int) -> list[Send]:
    """The rows whose attempt is due, pushed to `until` so that no other pass takes them meanwhile,
    their attempt counted (as a claim counts the consumer's)."""
    rows = list(await session.scalars(
        select(Send).where(Send.state == SENDING, Send.next_attempt_at <= now)
        .order_by(Send.next_attempt_at).limit(limit).with_for_update(skip_locked=True)))
    for row in rows:
        row.next_attempt_at = until
        row.attempts += 1
    return rows


async def deferred_dispatches(session: AsyncSession, dispatch_ids: set[UUID]) -> dict[UUID, DeferredDispatch]:
    found = await session.scalars(select(DeferredDispatch).where(DeferredDispatch.dispatch_id.in_(dispatch_ids)))
    return {row.dispatch_id: row for row in found}


async def reschedule(session: AsyncSession, row: Send, *, next_attempt_at: datetime, error: str) -> None:
    """The attempt failed for now: try again at `next_attempt_at`."""
    await session.execute(
        update(Send).where(Send.dispatch_id == row.dispatch_id, Send.recipient == row.recipient, Send.state == SENDING)
        .values(next_attempt_at=next_attempt_at, last_error=_clip(error),
                updated_at=func.now()))


async def give_up(session: AsyncSession, row: Send | Row, *, error: str) -> None:
    """Never try this recipient again: refused for good, or out of attempts."""
    await session.execute(
        update(Send).where(Send.dispatch_id == row.dispatch_id, Send.recipient == row.recipient, Send.state == SENDING)
        .values(state=FAILED, next_attempt_at=None,
                last_error=_clip(error), updated_at=func.now()))


async def settle(session: AsyncSession, dispatch_id: UUID) -> tuple[DeferredDispatch, list[Send]] | None:
    """If no recipient of the dispatch is scheduled any more: its deferral (deleted, so that exactly one
    pass reports it) and its rows. None while some are still scheduled, or when already reported."""
    deferral = (await session.scalars(select(DeferredDispatch).where(DeferredDispatch.dispatch_id == dispatch_id)
                                      .with_for_update())).first()
    if deferral is None:
        return None
    rows = list(await session.scalars(
        select(Send).where(Send.dispatch_id == dispatch_id, Send.tenant_id == deferral.tenant_id)
        .execution_options(populate_existing=True)))
    if any(row.state == SENDING and row.next_attempt_at is not None for row in rows):
        return None
    await session.execute(delete(DeferredDispatch).where(DeferredDispatch.dispatch_id == dispatch_id))
    return deferral, rows

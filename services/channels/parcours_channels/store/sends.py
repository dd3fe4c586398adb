"""The send-once ledger: one row per (dispatch, recipient), marked 'sent' as soon as the
transport accepted the message, so a redelivered dispatch never sends twice."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, DateTime, String, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_channels.store.base import Base

SENDING = "sending"
SENT = "sent"


class Send(Base):
    __tablename__ = "sends"
    __table_args__ = (CheckConstraint(f"state IN ('{SENDING}', '{SENT}')", name="sends_state"),)

    dispatch_id: Mapped[UUID] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    invoice_id: Mapped[UUID]
    channel: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(400))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def claim_recipients(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, dispatch_id: UUID,
                           channel: str, message_ids: dict[str, str]) -> dict[str, Send]:
    """Record an attempt for each recipient not yet sent; return every row of the dispatch by recipient."""
    rows = [dict(dispatch_id=dispatch_id, recipient=recipient, tenant_id=tenant_id, invoice_id=invoice_id,
                 channel=channel, message_id=message_id, state=SENDING, attempts=1)
            for recipient, message_id in message_ids.items()]
    await session.execute(
        insert(Send).values(rows).on_conflict_do_update(
            index_elements=[Send.dispatch_id, Send.recipient],
            set_={"attempts": Send.attempts + 1, "updated_at": func.now()},
            where=(Send.state == SENDING) & (Send.tenant_id == tenant_id),
        )
    )
    return {row.recipient: row for row in await list_sends(session, tenant_id=tenant_id, dispatch_id=dispatch_id)}


async def list_sends(session: AsyncSession, *, tenant_id: str, dispatch_id: UUID) -> list[Send]:
    """Every ledger row of one dispatch."""
    result = await session.scalars(
        select(Send).where(Send.tenant_id == tenant_id, Send.dispatch_id == dispatch_id).order_by(Send.recipient)
    )
    return list(result)


async def mark_sent(session: AsyncSession, *, tenant_id: str, dispatch_id: UUID, recipient: str) -> None:
    """The transport accepted this recipient's message: never send it again."""
    await session.execute(
        update(Send)
        .where(Send.tenant_id == tenant_id, Send.dispatch_id == dispatch_id, Send.recipient == recipient)
        .values(state=SENT, updated_at=func.now())
    )

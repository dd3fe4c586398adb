"""The send-once ledger: one row per (dispatch, recipient), marked 'sent' as soon as the
transport accepted the message, so a redelivered dispatch never sends twice; 'bounced' when
the message later came back for good. It is also what bounces are correlated against."""

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
BOUNCED = "bounced"


class Send(Base):
    __tablename__ = "sends"
    __table_args__ = (CheckConstraint(f"state IN ('{SENDING}', '{SENT}', '{BOUNCED}')", name="sends_state"),)

    dispatch_id: Mapped[UUID] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    invoice_id: Mapped[UUID]
    channel: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(400), index=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # What a bounce event needs to say about the message without the dispatch at hand.
    purpose: Mapped[str] = mapped_column(String(16), server_default="invoice")
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bounce_status: Mapped[str | None] = mapped_column(String(16))
    bounce_diagnostic: Mapped[str | None] = mapped_column(String(2000))


async def claim_recipients(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, dispatch_id: UUID,
                           channel: str, purpose: str, correlation_id: str,
                           message_ids: dict[str, str]) -> dict[str, Send]:
    """Record an attempt for each recipient not yet sent; return every row of the dispatch by recipient."""
    rows = [dict(dispatch_id=dispatch_id, recipient=recipient, tenant_id=tenant_id, invoice_id=invoice_id,
                 channel=channel, purpose=purpose, correlation_id=correlation_id, message_id=message_id,
                 state=SENDING, attempts=1)
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
    """Every ledger row of one dispatch. Looked up by the primary key alone and filtered on the
    tenant here: with both in the WHERE, a cached generic plan may walk the tenant index."""
    result = await session.scalars(select(Send).where(Send.dispatch_id == dispatch_id).order_by(Send.recipient))
    return [row for row in result if row.tenant_id == tenant_id]


async def mark_sent(session: AsyncSession, *, tenant_id: str, dispatch_id: UUID, recipient: str) -> None:
    """The transport accepted this recipient's message: never send it again."""
    await session.execute(
        update(Send)
        .where(Send.tenant_id == tenant_id, Send.dispatch_id == dispatch_id, Send.recipient == recipient)
        .values(state=SENT, updated_at=func.now())
    )


# Bounces arrive without a tenant: the signed return path (or the Message-ID) names the row,
# and the row says whose it is.

async def sends_of_dispatch(session: AsyncSession, *, dispatch_id: UUID) -> list[Send]:
    """Every ledger row of a dispatch, whoever's it is (for a signed return path)."""
    return list(await session.scalars(select(Send).where(Send.dispatch_id == dispatch_id)))


async def send_with_message_id(session: AsyncSession, *, message_id: str) -> Send | None:
    """The ledger row of the message with this Message-ID, if we sent it."""
    return (await session.scalars(select(Send).where(Send.message_id == message_id).limit(1))).first()


async def record_bounce(session: AsyncSession, *, send: Send, permanent: bool, status: str | None,
                        diagnostic: str) -> bool:
    """Note a bounce on its row; a permanent one marks it 'bounced'. False when the row had
    already bounced for good (a repeated report), which then changes nothing."""
    values: dict = {"bounced_at": func.now(), "bounce_status": status, "bounce_diagnostic": diagnostic,
                    "updated_at": func.now()}
    if permanent:
        values["state"] = BOUNCED
    result = await session.execute(
        update(Send)
        .where(Send.tenant_id == send.tenant_id, Send.dispatch_id == send.dispatch_id,
               Send.recipient == send.recipient, Send.state != BOUNCED)
        .values(**values)
    )
    return result.rowcount == 1

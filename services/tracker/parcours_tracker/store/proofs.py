"""Proofs of arrival the tracker receives itself: link clicks and partner acks."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_contracts import LinkClicked
from parcours_tracker.store.models import Ack, Click


async def add_click(session: AsyncSession, *, event: LinkClicked, nonce: str) -> bool:
    """Keep one human view with what the request told us about the reader; False if that page's
    nonce was already used (the same page submitted again)."""
    return (await session.execute(
        insert(Click)
        .values(event_id=event.event_id, tenant_id=event.tenant_id, invoice_id=event.invoice_id,
                dispatch_id=event.dispatch_id, recipient=event.recipient, ip=event.ip, user_agent=event.user_agent,
                nonce=nonce, clicked_at=event.occurred_at)
        .on_conflict_do_nothing(index_elements=[Click.nonce]).returning(Click.id)
    )).first() is not None


async def claim_ack(session: AsyncSession, *, channel: str, ack_id: str, tenant_id: str, invoice_id: uuid.UUID,
                    fingerprint: str, event_id: uuid.UUID) -> Ack | None:
    """Claim a partner's ack id; None if it is new, else its first delivery (whatever its tenant)."""
    claimed = (await session.execute(
        insert(Ack)
        .values(channel=channel, ack_id=ack_id, tenant_id=tenant_id, invoice_id=invoice_id,
                fingerprint=fingerprint, event_id=event_id)
        .on_conflict_do_nothing(index_elements=[Ack.channel, Ack.ack_id])
        .returning(Ack.ack_id)
    )).first()
    if claimed is not None:
        return None
    return (await session.execute(
        select(Ack).where(Ack.channel == channel, Ack.ack_id == ack_id)
    )).scalar_one()

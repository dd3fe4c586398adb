"""Who may receive a sign-in link, and the links themselves (single use, short-lived)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_portal.store.models import Customer, Recipient, SignInLink


async def customers_of(session: AsyncSession, email: str) -> list[tuple[str, str, str | None]]:
    """(tenant, customer, customer name) of every customer whose invoices go to this address."""
    query = (select(Recipient.tenant_id, Recipient.customer_ref, Customer.name)
             .outerjoin(Customer, (Customer.tenant_id == Recipient.tenant_id)
                        & (Customer.customer_ref == Recipient.customer_ref))
             .where(Recipient.email == email).order_by(Recipient.tenant_id, Recipient.customer_ref))
    return [tuple(row) for row in await session.execute(query)]


async def links_since(session: AsyncSession, email: str, since: datetime) -> int:
    return (await session.execute(select(func.count()).select_from(SignInLink).where(
        SignInLink.email == email, SignInLink.created_at >= since))).scalar_one()


async def consume(session: AsyncSession, token_hash: str, now: datetime) -> SignInLink | None:
    """The link, now used; None if unknown, used already or expired."""
    return (await session.execute(
        update(SignInLink).where(SignInLink.token_hash == token_hash, SignInLink.used_at.is_(None),
                                 SignInLink.expires_at > now)
        .values(used_at=now).returning(SignInLink))).scalar_one_or_none()


async def is_live(session: AsyncSession, token_hash: str, now: datetime) -> bool:
    return (await session.execute(select(func.count()).select_from(SignInLink).where(
        SignInLink.token_hash == token_hash, SignInLink.used_at.is_(None), SignInLink.expires_at > now
    ))).scalar_one() == 1

"""Submissions to delivery partners (Chorus Pro, AP platforms, AS2, Peppol access points).

One row per dispatch sent through a partner channel, shared by every partner adapter:
written as 'sending' before the call, 'submitted' the moment the partner accepted it (with its
reference: a deposit number, an AS2 Message-ID, a transmission id), so a crash or a
redelivery never submits twice; then followed up (polling at `next_check_at`, or a webhook /
MDN naming `partner_ref`) until a terminal state. `last_status` is the partner's own word,
`detail` what an adapter needs to keep about it (e.g. the lifecycle codes already reported)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, Index, Integer, String, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_channels.store.base import Base

# The generic states; partner detail goes in last_status.
SENDING = "sending"        # claimed, the partner call may or may not have happened
SUBMITTED = "submitted"    # the partner accepted it; waiting for its acknowledgement
ACKNOWLEDGED = "acknowledged"  # the partner confirmed delivery/integration; may still report later statuses
REJECTED = "rejected"      # the partner refused it for good (terminal)
FAILED = "failed"          # we gave up (no answer in time, refused before sending) (terminal)
DONE = "done"              # the partner reached its own last status (terminal)
TERMINAL = frozenset({REJECTED, FAILED, DONE})


class PartnerSubmission(Base):
    __tablename__ = "partner_submissions"
    __table_args__ = (
        Index("ix_partner_submissions_partner_ref", "channel", "partner_ref"),
        Index("ix_partner_submissions_due", "next_check_at", postgresql_where="next_check_at IS NOT NULL"),
    )

    dispatch_id: Mapped[UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    invoice_id: Mapped[UUID]
    channel: Mapped[str] = mapped_column(String(64))
    partner: Mapped[str] = mapped_column(String(64))       # which configured partner of the channel
    purpose: Mapped[str] = mapped_column(String(16), server_default="invoice")
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    partner_ref: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    last_status: Mapped[str | None] = mapped_column(String(64))
    last_status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")   # submission attempts
    checks: Mapped[int] = mapped_column(Integer, server_default="0")     # follow-up polls so far
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def claim_submission(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, dispatch_id: UUID, channel: str,
                           partner: str, purpose: str, correlation_id: str) -> PartnerSubmission | None:
    """Record an attempt (a new row, or one more on a row still 'sending'); the row, or None if
    the dispatch id is another tenant's."""
    await session.execute(
        insert(PartnerSubmission).values(
            dispatch_id=dispatch_id, tenant_id=tenant_id, invoice_id=invoice_id, channel=channel, partner=partner,
            purpose=purpose, correlation_id=correlation_id, state=SENDING, attempts=1,
        ).on_conflict_do_update(
            index_elements=[PartnerSubmission.dispatch_id],
            set_={"attempts": PartnerSubmission.attempts + 1, "updated_at": func.now()},
            where=(PartnerSubmission.state == SENDING) & (PartnerSubmission.tenant_id == tenant_id),
        )
    )
    row = await session.get(PartnerSubmission, dispatch_id, populate_existing=True)
    return row if row is not None and row.tenant_id == tenant_id else None


async def record_outcome(session: AsyncSession, *, dispatch_id: UUID, state: str, last_status: str | None,
                         partner_ref: str | None = None, next_check_at: datetime | None = None,
                         detail: dict[str, Any] | None = None, checked: bool = False) -> None:
    """Move a submission on: accepted (with the partner's reference), followed up, or finished."""
    values: dict[str, Any] = {"state": state, "last_status": last_status, "last_status_at": func.now(),
                              "next_check_at": None if state in TERMINAL else next_check_at, "updated_at": func.now()}
    if partner_ref is not None:
        values["partner_ref"] = partner_ref
    if detail is not None:
        values["detail"] = detail
    if checked:
        values["checks"] = PartnerSubmission.checks + 1
    await session.execute(update(PartnerSubmission).where(PartnerSubmission.dispatch_id == dispatch_id).values(**values))


async def due_submissions(session: AsyncSession, *, channel: str, now: datetime, limit: int = 100) -> list[PartnerSubmission]:
    """Submissions of `channel` whose follow-up is due, locked for this pass (replicas skip them)."""
    result = await session.scalars(
        select(PartnerSubmission)
        .where(PartnerSubmission.channel == channel, PartnerSubmission.next_check_at <= now)
        .order_by(PartnerSubmission.next_check_at).limit(limit).with_for_update(skip_locked=True)
    )
    return list(result)


async def lease(session: AsyncSession, *, dispatch_id: UUID, until: datetime) -> None:
    """Keep a due submission from other passes while this one checks it (its next check moves to `until`)."""
    await session.execute(update(PartnerSubmission).where(PartnerSubmission.dispatch_id == dispatch_id)
                          .values(next_check_at=until))


async def submission_by_ref(session: AsyncSession, *, channel: str, partner_ref: str) -> PartnerSubmission | None:
    """The submission a partner's acknowledgement names."""
    return (await session.scalars(select(PartnerSubmission).where(
        PartnerSubmission.channel == channel, PartnerSubmission.partner_ref == partner_ref).limit(1))).first()

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

from sqlalchemy import DateTime, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
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

"""The send-once ledger: one row per (dispatch, recipient), marked 'sent' as soon as the
transport accepted the message, so a redelivered dispatch never sends twice; 'bounced' when
the message later came back for good. It is also what bounces are correlated against.
A recipient the relay put off (SMTP 4xx) stays 'sending' with a `next_attempt_at`: the
deferred retries own it until it is sent or 'failed' (refused for good, or retries exhausted)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, DateTime, Index, Row, String, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_channels.store.base import Base

SENDING = "sending"
SENT = "sent"
BOUNCED = "bounced"
FAILED = "failed"
ACCEPTED = (SENT, BOUNCED)  # the relay took the message (what happened to it later aside)


class Send(Base):
    __tablename__ = "sends"
    __table_args__ = (
        CheckConstraint(f"state IN ('{SENDING}', '{SENT}', '{BOUNCED}', '{FAILED}')", name="sends_state"),
        Index("ix_sends_next_attempt_at", "next_attempt_at", postgresql_where=text("next_attempt_at IS NOT NULL")),
    )

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
    # Deferred retries: when the next attempt is due (NULL: not scheduled), and why the last one failed.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(2000))


# Both ledger writes take arrays: one statement text (one prepared plan) whatever the group's size, and
# `dispatch_id = ANY(...)` keeps PostgreSQL on the primary key (a bare join on unnest, or a tuple IN,
# walked ix_sends_tenant_id and read every row of the tenant while the table had no statistics).
_CLAIM_FIELDS = ("dispatch_id", "recipient", "tenant_id", "invoice_id", "channel", "purpose", "correlation_id",
                 "message_id")
# One statement, so it needs no transaction of its own: the claimed rows as they are now, and the
# dispatches' other rows (already sent, or another tenant's) as they were.
_CLAIM = text(f"""
    WITH claimed AS (
        INSERT INTO sends (dispatch_id, recipient, tenant_id, invoice_id, channel, purpose, correlation_id,
                           message_id, state, attempts)
        SELECT d, r, t, i, c, p, k, m, '{SENDING}', 1
        FROM unnest(CAST(:dispatch_id AS uuid[]), CAST(:recipient AS text[]), CAST(:tenant_id AS text[]),
                    CAST(:invoice_id AS uuid[]), CAST(:channel AS text[]), CAST(:purpose AS text[]),
                    CAST(:correlation_id AS text[]), CAST(:message_id AS text[])) AS claim(d, r, t, i, c, p, k, m)
        ON CONFLICT (dispatch_id, recipient) DO UPDATE SET attempts = sends.attempts + 1, updated_at = now()
        WHERE sends.state = '{SENDING}' AND sends.tenant_id = excluded.tenant_id
        RETURNING sends.*)
    SELECT * FROM claimed
    UNION ALL
    SELECT * FROM sends WHERE sends.dispatch_id = ANY(CAST(:dispatch_id AS uuid[]))
      AND NOT EXISTS (SELECT 1 FROM claimed WHERE claimed.dispatch_id = sends.dispatch_id
                                              AND claimed.recipient = sends.recipient)""")
_MARK_SENT = text(f"""
    UPDATE sends SET state = '{SENT}', next_attempt_at = NULL, updated_at = now()
    FROM unnest(CAST(:tenants AS text[]), CAST(:dispatches AS uuid[]), CAST(:recipients AS text[])) AS k(t, d, r)
    WHERE sends.dispatch_id = ANY(CAST(:dispatches AS uuid[]))
      AND sends.dispatch_id = k.d AND sends.recipient = k.r AND sends.tenant_id = k.t""")


@dataclass(frozen=True)
class Claim:
    """A dispatch's recipients to send to (by normalised address), with their stable Message-IDs."""

    tenant_id: str
    invoice_id: UUID
    dispatch_id: UUID
    channel: str
    purpose: str
    correlation_id: str
    message_ids: dict[str, str]


async def claim_recipients(connection: AsyncConnection, claims: list[Claim]) -> list[dict[str, Row]]:
    """Record an attempt for each recipient not yet sent, for several dispatches in one statement;
    return, per claim, every row of its dispatch by recipient (only the claiming tenant's rows)."""
    rows: dict[tuple[UUID, str], dict] = {}
    for claim in claims:
        for recipient, message_id in claim.message_ids.items():
            rows.setdefault((claim.dispatch_id, recipient), dict(
                dispatch_id=claim.dispatch_id, recipient=recipient, tenant_id=claim.tenant_id,
                invoice_id=claim.invoice_id, channel=claim.channel, purpose=claim.purpose,
                correlation_id=claim.correlation_id, message_id=message_id))
    found = await connection.execute(_CLAIM, {field: [row[field] for row in rows.values()] for field in _CLAIM_FIELDS})
    by_dispatch: dict[UUID, list[Row]] = {}
    for row in found:
        by_dispatch.setdefault(row.dispatch_id, []).append(row)
    return [{row.recipient: row for row in by_dispatch.get(claim.dispatch_id, []) if row.tenant_id == claim.tenant_id}
            for claim in claims]


async def mark_sent(connection: AsyncConnection, accepted: list[tuple[str, UUID, str]]) -> None:
    """The transport accepted these (tenant, dispatch, recipient) messages: never send them again."""
    tenants, dispatches, recipients = (list(column) for column in zip(*accepted))
    await connection.execute(_MARK_SENT, {"tenants": tenants, "dispatches": dispatches, "recipients": recipients})


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

"""Link opens (GETs of a tracked link), journaled by group commit.

An open is never proof of anything (mail scanners fetch every link; the interstitial's button is
the proof of a person) and never moves an invoice's status: it only adds a journal entry,
`opened` or `opened_by_machine` with its evidence. So `GET /l/{token}` verifies the token and hands
the open to this recorder, which writes the opens of concurrent requests together: a group formed
within `window_seconds`, or of all that arrived while earlier groups were being written (two groups
at a time: under load the groups grow instead of each waiting for its own write, and the tracker
answers one group's requests while PostgreSQL works on the next).

A group is one prepared statement on one of the recorder's own connections (one round trip, its own
transaction): it journals the opens of invoices past pending and says which invoices those were. The
invoices' rows are left alone (`GET /v1/invoices?since=` finds opens in the journal, by when they
were learned): an update of an invoice row touches each of its seven indexes, twice the cost of the
open itself. An open of an invoice the tracker does not know yet (or only as pending: the link was
followed before the dispatch reached the tracker) is then recorded in full (`journeys.record_facts`:
it creates or re-projects the row). Whether an open was a prefetch is judged against the token's issue time, which is when channels sent
the message; tokens issued before that was a claim fall back on the journal's dispatch time.

Each request waits for its group's commit before it redirects: an answered open is in PostgreSQL (a
kill -9 of the tracker loses none), and a database that fails the group fails its requests (503), not
silently their opens. The connection commits without waiting for the WAL flush (`synchronous_commit`
off, unless `durable_opens`): a crash of PostgreSQL's host may lose the last fraction of a second of
opens — evidence, never a status — and a group does not wait for the disk."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from parcours_runtime.group_commit import GroupCommit
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.clicks import classify_open
from parcours_tracker.domain.following import Fact
from parcours_tracker.domain.status import PENDING
from parcours_tracker.store import journeys

OPENS = "opens"  # the recorder's key in ServiceContext.extras
IN_FLIGHT = 2  # groups written at once, each on its own connection


@dataclass(frozen=True)
class LinkOpen:
    """A GET of a valid tracked link: who, when, from where; `sent_at`: the token's issue time (None for
    tokens that do not carry it)."""

    event_id: uuid.UUID
    tenant_id: str
    invoice_id: uuid.UUID
    dispatch_id: uuid.UUID
    recipient: str
    ip: str | None
    user_agent: str | None
    at: datetime
    sent_at: datetime | None = None

    @property
    def key(self) -> tuple[str, uuid.UUID]:
        return self.tenant_id, self.invoice_id


# The opens of invoices past pending journaled (a repeated event id left out), in one statement; it returns the
# invoices it took, so the others go the long way. The invoices' rows are neither locked nor stamped: an open
# changes nothing on them (the `since` filter finds opens in the journal), and their status never goes back to
# pending.
_JOURNAL_OPENS = f"""
    WITH opens AS (
        SELECT * FROM unnest($1::varchar[], $2::uuid[], $3::uuid[], $4::varchar[], $5::timestamptz[], $6::text[])
            AS u(tenant_id, invoice_id, event_id, kind, occurred_at, detail)
    ), known AS (
        SELECT i.tenant_id, i.invoice_id FROM invoices AS i
        WHERE i.tenant_id = ANY($1::varchar[]) AND i.invoice_id = ANY($2::uuid[]) AND i.status <> '{PENDING}'
          AND (i.tenant_id, i.invoice_id) IN (SELECT tenant_id, invoice_id FROM opens)
    ), journaled AS (
        INSERT INTO journal (tenant_id, invoice_id, event_id, kind, occurred_at, detail)
        SELECT o.tenant_id, o.invoice_id, o.event_id, o.kind, o.occurred_at, o.detail::jsonb
        FROM opens AS o JOIN known USING (tenant_id, invoice_id)
        ON CONFLICT (event_id) DO NOTHING
    )
    SELECT tenant_id, invoice_id FROM known"""


class OpenRecorder:
    """BackgroundJob: `record()` from the route returns once the open is committed; `stop()` writes the
    group still forming and waits for those being written."""

    def __init__(self, ctx: ServiceContext, *, window_seconds: float = 0, max_items: int = 500):
        self._ctx = ctx
        self._group = GroupCommit(self._write_group, window_seconds=window_seconds, max_items=max_items,
                                  max_in_flight=IN_FLIGHT)  # groups grow with the load instead of queueing commits
        self._stopped = asyncio.Event()
        self._idle: list[asyncpg.Connection] = []  # at most IN_FLIGHT: one per group being written
        self.written = 0

    async def record(self, opened: LinkOpen) -> None:
        await self._group.submit(opened)

    async def run(self) -> None:
        await self._stopped.wait()  # nothing to do in the background: the groups write themselves

    async def stop(self) -> None:
        self._stopped.set()
        await self._group.drain()
        while self._idle:
            await self._idle.pop().close()

    async def _write_group(self, batch: list[LinkOpen]) -> list[None]:
        await self.write(batch)
        return [None] * len(batch)

    async def _connection(self) -> asyncpg.Connection:
        """An idle connection of the recorder's, or a new one (a failed one is not put back)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
        url = self._ctx.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return await asyncpg.connect(
            url, server_settings={"synchronous_commit": "on" if self._ctx.settings.durable_opens else "off"})

    async def write(self, batch: list[LinkOpen]) -> None:
        """Journal `batch`: one statement when its invoices are past pending (the usual case)."""
        entries = await self._entries(batch)
        connection = await self._connection()
        try:
            known = {(row[0], row[1]) for row in await connection.fetch(_JOURNAL_OPENS, *_columns(entries))}
        except asyncpg.PostgresError as exc:
            if not isinstance(exc, asyncpg.PostgresConnectionError):
                self._idle.append(connection)  # the statement failed, the connection did not
            raise
        except BaseException:  # lost, or cancelled mid-statement: the next group connects again
            connection.terminate()
            raise
        self._idle.append(connection)
        facts = [Fact(tenant_id=opened.tenant_id, invoice_id=opened.invoice_id, correlation_id=str(opened.invoice_id),
                      entry=entry) for opened, entry in entries if opened.key not in known]
        if facts:  # rare: the link was followed before the tracker learned of the dispatch
            async with UnitOfWork(self._ctx.sessions) as uow:
                await journeys.record_facts(uow, self._ctx.extras["tracking"], facts)
                await uow.commit()
        self.written += len(batch)

    async def _entries(self, batch: list[LinkOpen]) -> list[tuple[LinkOpen, journal.Entry]]:
        """Each open's journal entry, classified against when its message was sent."""
        sent = {(opened.tenant_id, opened.invoice_id, str(opened.dispatch_id)): opened.sent_at
                for opened in batch if opened.sent_at is not None}
        undated = list({opened.key for opened in batch if opened.sent_at is None})
        if undated:  # tokens issued before they carried their issue time
            async with self._ctx.sessions() as session:
                sent = {**await journeys.dispatch_times(session, keys=undated), **sent}
        prefetch_seconds, entries = self._ctx.settings.prefetch_seconds, []
        for opened in batch:
            sent_at = sent.get((opened.tenant_id, opened.invoice_id, str(opened.dispatch_id)))
            kind, reasons = classify_open(
                user_agent=opened.user_agent, prefetch_seconds=prefetch_seconds,
                seconds_after_dispatch=(opened.at - sent_at).total_seconds() if sent_at else None)
            entries.append((opened, journal.Entry(event_id=opened.event_id, kind=kind, occurred_at=opened.at, detail={
                "dispatch_id": str(opened.dispatch_id), "recipient": opened.recipient, "ip": opened.ip,
                "user_agent": opened.user_agent, "machine_evidence": reasons})))
        return entries


def _columns(entries: list[tuple[LinkOpen, journal.Entry]]) -> tuple[list, ...]:
    return ([opened.tenant_id for opened, _ in entries], [opened.invoice_id for opened, _ in entries],
            [entry.event_id for _, entry in entries], [entry.kind for _, entry in entries],
            [entry.occurred_at for _, entry in entries], [json.dumps(entry.detail) for _, entry in entries])

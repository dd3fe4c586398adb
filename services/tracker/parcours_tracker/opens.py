"""Link opens (GETs of a tracked link), journaled by group commit.

An open is never proof of anything (mail scanners fetch every link; the interstitial's button is
the proof of a person) and never moves an invoice's status: it only adds a journal entry,
`opened` or `opened_by_machine` with its evidence. So `GET /l/{token}` verifies the token and hands
the open to this recorder, which writes the opens of concurrent requests together: a group formed
within `window_seconds`, or of all that arrived while the previous group was being written (one
group at a time: under load the groups grow instead of each waiting for its own WAL flush). Per
group: the dispatch times it classifies against and whether each invoice is past pending (queried
once, then remembered: neither changes once true), then one statement outside a transaction (one
round trip) that inserts the journal rows and stamps the invoices' `updated_at` (locked in key order,
like every writer of invoices).
An open of an invoice the tracker does not know yet (or only as pending) is recorded in full
(`journeys.record_facts`: it creates the invoice row).

Each request waits for its group's commit before it redirects: an answered open is stored (a kill -9
loses none), and a database that fails the group fails its requests (503), not silently their opens."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parcours_runtime.group_commit import GroupCommit
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.clicks import classify_open
from parcours_tracker.domain.following import Fact
from parcours_tracker.domain.status import PENDING
from parcours_tracker.store import journeys
from parcours_tracker.store.models import Invoice
from parcours_tracker.store.recording import append_and_touch

OPENS = "opens"  # the recorder's key in ServiceContext.extras


@dataclass(frozen=True)
class LinkOpen:
    """A GET of a valid tracked link: who, when, from where."""

    event_id: uuid.UUID
    tenant_id: str
    invoice_id: uuid.UUID
    dispatch_id: uuid.UUID
    recipient: str
    ip: str | None
    user_agent: str | None
    at: datetime

    @property
    def key(self) -> tuple[str, uuid.UUID]:
        return self.tenant_id, self.invoice_id

    @property
    def dispatch_key(self) -> tuple[str, uuid.UUID, str]:
        return self.tenant_id, self.invoice_id, str(self.dispatch_id)


_REMEMBERED = 100_000


def _remember(cache: dict, found: dict) -> None:
    """Add what a query found to a bounded cache (the oldest entries go first). Only facts that never
    change once true are cached: an invoice past pending, a dispatch's time."""
    cache.update(found)
    while len(cache) > _REMEMBERED:
        cache.pop(next(iter(cache)))


class OpenRecorder:
    """BackgroundJob: `record()` from the route returns once the open is committed; `stop()` writes the
    group still forming and waits for those being written."""

    def __init__(self, ctx: ServiceContext, *, window_seconds: float = 0, max_items: int = 500):
        self._ctx = ctx
        self._group = GroupCommit(self._write_group, window_seconds=window_seconds, max_items=max_items,
                                  one_at_a_time=True)  # groups grow with the load instead of queueing commits
        self._stopped = asyncio.Event()
        # A transaction per statement (no BEGIN, no COMMIT): a group of opens of known invoices is one round trip.
        self._autocommit = async_sessionmaker(ctx.engine.execution_options(isolation_level="AUTOCOMMIT"),
                                              expire_on_commit=False)
        self._settled: dict[tuple[str, uuid.UUID], bool] = {}  # invoices past pending
        self._sent: dict[tuple[str, uuid.UUID, str], datetime] = {}  # dispatch times
        self.written = 0

    async def record(self, opened: LinkOpen) -> None:
        await self._group.submit(opened)

    async def run(self) -> None:
        await self._stopped.wait()  # nothing to do in the background: the groups write themselves

    async def stop(self) -> None:
        self._stopped.set()
        await self._group.drain()

    async def _write_group(self, batch: list[LinkOpen]) -> list[None]:
        await self.write(batch)
        return [None] * len(batch)

    async def write(self, batch: list[LinkOpen]) -> None:
        """Journal `batch`: one statement when its invoices are known (the usual case, after their first open)."""
        keys = list({opened.key for opened in batch})
        unknown = [key for key in keys if key not in self._settled]
        unsent = list({opened.key for opened in batch if opened.dispatch_key not in self._sent})
        async with self._autocommit() as session:
            if unknown:  # a pending invoice's status_at is its earliest fact, which an open may be: re-projected
                _remember(self._settled, {(row.tenant_id, row.invoice_id): True for row in (await session.execute(
                    select(Invoice.tenant_id, Invoice.invoice_id)
                    .where(tuple_(Invoice.tenant_id, Invoice.invoice_id).in_(unknown),
                           Invoice.status != PENDING))).all()})
            if unsent:
                _remember(self._sent, await journeys.dispatch_times(session, keys=unsent))
            await self._journal(session, batch)

    async def _journal(self, session: AsyncSession, batch: list[LinkOpen]) -> None:
        settings, tracking = self._ctx.settings, self._ctx.extras["tracking"]
        rows, facts = [], []
        for opened in batch:
            sent_at = self._sent.get(opened.dispatch_key)
            kind, reasons = classify_open(
                user_agent=opened.user_agent, prefetch_seconds=settings.prefetch_seconds,
                seconds_after_dispatch=(opened.at - sent_at).total_seconds() if sent_at else None)
            entry = journal.Entry(event_id=opened.event_id, kind=kind, occurred_at=opened.at, detail={
                "dispatch_id": str(opened.dispatch_id), "recipient": opened.recipient, "ip": opened.ip,
                "user_agent": opened.user_agent, "machine_evidence": reasons})
            if opened.key not in self._settled:  # rare: the link was sent before the tracker learned the invoice
                facts.append(Fact(tenant_id=opened.tenant_id, invoice_id=opened.invoice_id,
                                  correlation_id=str(opened.invoice_id), entry=entry))
            else:
                rows.append((opened.tenant_id, opened.invoice_id, entry))
        if facts:
            async with UnitOfWork(self._ctx.sessions) as uow:
                await journeys.record_facts(uow, tracking, facts)
                await uow.commit()
        if rows:  # an open never moves the status: appended, nothing to re-project
            await append_and_touch(session, rows)
        self.written += len(batch)

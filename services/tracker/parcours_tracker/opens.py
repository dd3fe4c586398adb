"""Link opens (GETs of a tracked link), written to the journal in batches, off the request path.

An open is never proof of anything (mail scanners fetch every link; the interstitial's button is
the proof of a person) and never moves an invoice's status: it only adds a journal entry,
`opened` or `opened_by_machine` with its evidence. So `GET /l/{token}` verifies the token, hands
the open to this recorder and redirects at once; the recorder writes what accumulated every few
milliseconds, in one transaction: the dispatch times it classifies against and whether each
invoice is past pending (queried once, then remembered: neither changes once true), the journal
rows (one insert), the invoices' `updated_at`. An open of an invoice the tracker does not
know yet (or only as pending) is recorded in full (`journeys.record_facts`: it creates the invoice row).

The price: opens wait up to `linger_seconds` in memory; a crash (kill -9) loses those, a graceful
stop writes them first. A full queue makes the request wait (back-pressure), never drops."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_

from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.clicks import classify_open
from parcours_tracker.domain.following import Fact
from parcours_tracker.domain.status import PENDING
from parcours_tracker.store import journeys
from parcours_tracker.store.models import Invoice
from parcours_tracker.store.recording import append_entries, touch_invoices

log = logging.getLogger(__name__)

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
    """BackgroundJob: `add()` from the route, batches written by `run()`, the rest by `stop()`."""

    def __init__(self, ctx: ServiceContext, *, max_batch: int = 500, linger_seconds: float = 0.02,
                 capacity: int = 20_000):
        self._ctx = ctx
        self._queue: asyncio.Queue[LinkOpen] = asyncio.Queue(capacity)
        self._max_batch, self._linger = max_batch, linger_seconds
        self._stopping = False
        self._in_hand: list[LinkOpen] = []
        self._settled: dict[tuple[str, uuid.UUID], bool] = {}  # invoices past pending
        self._sent: dict[tuple[str, uuid.UUID, str], datetime] = {}  # dispatch times
        self._writing = asyncio.Lock()
        self.written = 0

    async def add(self, opened: LinkOpen) -> None:
        await self._queue.put(opened)

    def _take(self) -> list[LinkOpen]:
        batch = []
        while len(batch) < self._max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            if not self._in_hand:
                first = await self._queue.get()
                await asyncio.sleep(self._linger)  # let the opens arriving meanwhile join this write
                self._in_hand = [first, *self._take()]
            async with self._writing:
                if self._stopping:
                    return  # stop() wrote the batch in hand
                try:
                    await self.write(self._in_hand)
                    self._in_hand, backoff = [], 0.1
                    continue
                except Exception:  # database away: keep the batch, try again
                    log.exception("writing %d link opens failed; retrying in %.1fs", len(self._in_hand), backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        """Write the batch in hand and everything still queued."""
        self._stopping = True
        async with self._writing:
            batch, self._in_hand = [*self._in_hand, *self._take()], []
            while batch:
                await self.write(batch)
                batch = self._take()

    async def write(self, batch: list[LinkOpen]) -> None:
        """Journal `batch` in one transaction."""
        settings, tracking = self._ctx.settings, self._ctx.extras["tracking"]
        keys = list({opened.key for opened in batch})
        async with UnitOfWork(self._ctx.sessions) as uow:
            session = uow.session
            unknown = [key for key in keys if key not in self._settled]
            if unknown:  # a pending invoice's status_at is its earliest fact, which an open may be: re-projected
                _remember(self._settled, {(row.tenant_id, row.invoice_id): True for row in (await session.execute(
                    select(Invoice.tenant_id, Invoice.invoice_id)
                    .where(tuple_(Invoice.tenant_id, Invoice.invoice_id).in_(unknown),
                           Invoice.status != PENDING))).all()})
            unsent = list({opened.key for opened in batch if opened.dispatch_key not in self._sent})
            if unsent:
                _remember(self._sent, await journeys.dispatch_times(session, keys=unsent))
            known = {key for key in keys if key in self._settled}
            rows, facts = [], []
            for opened in batch:
                sent_at = self._sent.get(opened.dispatch_key)
                kind, reasons = classify_open(
                    user_agent=opened.user_agent, prefetch_seconds=settings.prefetch_seconds,
                    seconds_after_dispatch=(opened.at - sent_at).total_seconds() if sent_at else None)
                entry = journal.Entry(event_id=opened.event_id, kind=kind, occurred_at=opened.at, detail={
                    "dispatch_id": str(opened.dispatch_id), "recipient": opened.recipient, "ip": opened.ip,
                    "user_agent": opened.user_agent, "machine_evidence": reasons})
                if opened.key not in known:  # rare: the link was sent before the tracker learned the invoice
                    facts.append(Fact(tenant_id=opened.tenant_id, invoice_id=opened.invoice_id,
                                      correlation_id=str(opened.invoice_id), entry=entry))
                else:
                    rows.append((opened.tenant_id, opened.invoice_id, entry))
            if facts:
                await journeys.record_facts(uow, tracking, facts)
            if rows:  # an open never moves the status: appended, nothing to re-project
                await append_entries(session, rows)
                await touch_invoices(session, [(tenant_id, invoice_id) for tenant_id, invoice_id, _ in rows])
            await uow.commit()
        self.written += len(batch)

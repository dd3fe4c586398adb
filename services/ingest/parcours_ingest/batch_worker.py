"""The batch worker: a background job in every ingest process that claims pending batches (SKIP
LOCKED, under a lease: replicas share them, and a crashed worker's batch is resumed once its lease
runs out), reads their items, checks each one exactly as `POST /v1/invoices` does, and stores a
chunk of invoices, their `invoice.received` events (outbox) and the items' outcomes in one
transaction that also moves the batch's cursor. Nothing is lost and nothing is stored twice."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from parcours_contracts import InvoiceReceived
from parcours_runtime.periodic import PeriodicJob
from parcours_runtime.problems import Problem
from parcours_runtime.service import ServiceContext
from parcours_runtime.table_stats import FirstStatistics
from parcours_runtime.uow import UnitOfWork
from parcours_ingest.api.batch_reading import Outcome, check_items, read_items
from parcours_ingest.api.formats import document_problem
from parcours_ingest.api.invoices import duplicate_problem, summarise
from parcours_ingest.config import Settings
from parcours_ingest.domain.batch_items import located
from parcours_ingest.domain.csv_mapping import MappingProfile, TableError
from parcours_ingest.domain.duplicates import DuplicateKey, duplicate_key
from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.store import batches as store
from parcours_ingest.store.batch_models import BatchItemRow, BatchRow
from parcours_ingest.store.invoices import insert_invoices, invoice_rows, keep_documents, keys_taken

log = logging.getLogger(__name__)
_STORE_ATTEMPTS = 5  # a chunk racing a single POST of the same invoice is retried; it then shows as taken



class BatchWorker(PeriodicJob):
    """BackgroundJob: a pass every `batch_poll_seconds`, or at once when woken (a batch was just received here)."""

    def __init__(self, ctx: ServiceContext):
        super().__init__(ctx.settings.batch_poll_seconds)
        self._ctx = ctx
        self._settings: Settings = ctx.settings
        self._lease = timedelta(seconds=ctx.settings.batch_lease_seconds)

    async def run_once(self) -> int:
        """Process every batch that can be claimed; how many were."""
        processed = 0
        while not self.stopping:
            async with self._ctx.sessions.begin() as session:
                batch = await store.claim_batch(session, lease=self._lease)
            if batch is None:
                return processed
            heartbeat = asyncio.create_task(self._keep_lease(batch))
            try:
                await self._process(batch)
            finally:
                heartbeat.cancel()
            processed += 1
        return processed

    async def _keep_lease(self, batch: BatchRow) -> None:
        """Renew the lease while the batch is read (splitting a long PDF can outlast it) and worked on."""
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                async with self._ctx.sessions.begin() as session:
                    if not await store.renew_lease(session, batch=batch, lease=self._lease):
                        return
            except Exception:  # the database away for a moment: the next beat tries again
                log.warning("batch %s: lease not renewed", batch.id, exc_info=True)

    async def _process(self, batch: BatchRow) -> None:
        try:
            async with self._ctx.sessions() as session:
                files = await store.batch_files(session, batch_id=batch.id)
            items, profile = await asyncio.to_thread(read_items, batch, files, self._settings)
        except (TableError, DocumentError, Problem) as exc:
            await self._finish(batch, "failed", error=_refusal(exc))
            return
        except Exception:
            log.exception("batch %s cannot be read (attempt %s)", batch.id, batch.attempts)
            await self._give_up_or_release(batch)
            return
        size = self._settings.batch_chunk_size
        try:
            for start in range(batch.processed_items, len(items), size):
                if self.stopping:  # shutting down: handed back, the batch resumes from its cursor elsewhere
                    await self._release(batch)
                    return
                chunk = items[start:start + size]
                outcomes = await asyncio.to_thread(check_items, chunk, self._settings, profile)
                if not await self._store(batch, outcomes, total=len(items), profile=profile):
                    log.warning("batch %s was taken over by another worker; this one stops", batch.id)
                    return
        except Exception:
            log.exception("batch %s failed at a chunk (attempt %s)", batch.id, batch.attempts)
            await self._give_up_or_release(batch)
            return
        await self._finish(batch, "done", total=len(items))

    async def _store(self, batch: BatchRow, outcomes: list[Outcome], *, total: int,
                     profile: MappingProfile | None) -> bool:
        blobs = self._ctx.extras["blobs"]
        kept = [await keep_documents(blobs, tenant_id=batch.tenant_id, invoice=o.submission.invoice,
                                     pdf=o.submission.pdf) if o.submission is not None else None for o in outcomes]
        for _ in range(_STORE_ATTEMPTS):
            try:
                async with UnitOfWork(self._ctx.sessions) as uow:
                    taken = await keys_taken(uow.session, tenant_id=batch.tenant_id, keys=[
                        duplicate_key(o.submission.invoice) for o in outcomes if o.submission is not None])
                    invoices, items, parts = [], [], []
                    for outcome, documents in zip(outcomes, kept):
                        item_row = _item_row(batch, outcome, taken, profile)
                        if item_row.status == "accepted":
                            invoice = outcome.submission.invoice
                            invoice_id = taken[duplicate_key(invoice)] = item_row.invoice_id
                            rows = invoice_rows(tenant_id=batch.tenant_id, invoice_id=invoice_id, invoice=invoice,
                                                documents=documents,
                                                correlation_id=batch.correlation_id or str(invoice_id))
                            invoices.append(rows)
                            uow.publish(InvoiceReceived(tenant_id=batch.tenant_id, invoice_id=invoice_id,
                                                        correlation_id=batch.correlation_id or str(invoice_id),
                                                        invoice=summarise(invoice, has_pdf=rows.has_pdf,
                                                                          source_format=rows.invoice["source_format"])))
                        elif item_row.status == "unmatched":
                            parts.append((f"part-{item_row.seq}", "application/pdf", outcome.item.pdf))
                        items.append(item_row)
                    await insert_invoices(uow.session, invoices)
                    if not await store.record_progress(uow.session, batch=batch, items=items, lease=self._lease,
                                                       total_items=total):
                        return False
                    store.add_files(uow.session, batch=batch, files=parts)
                    await uow.commit()
                    return True
            except IntegrityError as exc:
                log.warning("batch %s: chunk conflict, retrying: %s", batch.id, str(exc)[:300])
                continue  # a number was taken meanwhile (a concurrent POST): the next attempt sees it
        raise RuntimeError(f"batch {batch.id}: a chunk could not be stored after {_STORE_ATTEMPTS} attempts")

    async def _finish(self, batch: BatchRow, status: str, *, error: dict | None = None,
                      total: int | None = None) -> None:
        async with self._ctx.sessions.begin() as session:
            await store.finish_batch(session, batch=batch, status=status, error=error, total_items=total)

    async def _give_up_or_release(self, batch: BatchRow) -> None:
        if batch.attempts >= self._settings.batch_max_attempts:
            await self._finish(batch, "failed", error={"status": 500, "detail": "The batch could not be processed; "
                                                                                "the error has been logged."})
            return
        await self._release(batch)

    async def _release(self, batch: BatchRow) -> None:
        async with self._ctx.sessions.begin() as session:
            await store.release_batch(session, batch=batch)


def background(ctx: ServiceContext) -> list:
    worker = BatchWorker(ctx)
    ctx.extras["batch_worker"] = worker
    # A fresh database's first imports look duplicate keys up by number: without statistics yet, PostgreSQL
    # reads them through the tenant index, every row of the tenant each time (see parcours_runtime.table_stats).
    return [worker, FirstStatistics(ctx.engine, ("invoices", "batch_items"))]


def _item_row(batch: BatchRow, outcome: Outcome, taken: dict[DuplicateKey, uuid.UUID],
              profile: MappingProfile | None) -> BatchItemRow:
    item = outcome.item
    row = BatchItemRow(batch_id=batch.id, seq=item.seq, tenant_id=batch.tenant_id, number=item.number,
                       location=item.location)
    if outcome.submission is not None:
        key = duplicate_key(outcome.submission.invoice)
        row.number = key.number
        if key in taken:
            problem = duplicate_problem(key, taken[key], pointer=outcome.submission.number_pointer)
            row.status, row.code, row.detail = "duplicate", problem.slug, problem.detail
            row.errors = located(problem.errors, item, profile)
        else:
            row.status, row.invoice_id = "accepted", uuid.uuid4()
        return row
    problem = outcome.problem
    row.status = item.status if item.code is not None else "rejected"
    row.code, row.detail, row.errors = problem.slug, problem.detail[:1000], problem.errors or None
    return row


def _refusal(exc: TableError | DocumentError | Problem) -> dict[str, Any]:
    """Why a whole batch is refused, as problem members."""
    if isinstance(exc, DocumentError):
        exc = document_problem(exc)
    return {"status": exc.status, "type": exc.slug, "detail": exc.detail, "errors": exc.errors or []}

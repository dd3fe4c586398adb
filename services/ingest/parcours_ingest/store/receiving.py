"""Storing received invoices by group commit: the invoices POSTed at about the same time share one
transaction (one BEGIN … COMMIT and one statement per table for the group instead of per invoice).
Each request still waits for the commit that holds its rows before it answers.

An invoice whose duplicate key (or Idempotency-Key) is already taken, by a committed invoice or by
another of the group, does not fail its neighbours: `ON CONFLICT DO NOTHING` leaves it out, and its
request hears `False` after the commit, then answers as it would have after its own failed INSERT."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Boolean, Date, Numeric, SmallInteger, String, bindparam, insert, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parcours_runtime.group_commit import GroupCommit
from parcours_runtime.outbox import StagedEvent, add_to_outbox
from parcours_ingest.store.invoices import InvoiceRows
from parcours_ingest.store.models import IdempotencyKeyRow, InvoicePdfRow, InvoiceSourceRow


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    request_hash: str
    status: int
    response_json: dict


@dataclass(frozen=True)
class Receipt:
    """One request's rows: its invoice (and documents), its InvoiceReceived staged in the request's
    trace context, and the response to remember under its Idempotency-Key if it sent one."""

    tenant_id: str
    rows: InvoiceRows
    event: StagedEvent
    idempotency: IdempotencyRecord | None = None


_INVOICE_COLUMNS = ("id", "tenant_id", "number", "issue_date", "issue_year", "seller_key", "due_date", "currency",
                    "customer_ref", "total_incl_tax", "document", "has_pdf", "source_format", "correlation_id")
_ARRAY_TYPES = {"id": UUID(as_uuid=True), "issue_date": Date(), "due_date": Date(), "issue_year": SmallInteger(),
                "total_incl_tax": Numeric(20, 2), "has_pdf": Boolean()}
# Arrays, not a multi-row VALUES: one statement text whatever the group's size, prepared once. ORDER BY n:
# of two invoices of a group with the same duplicate key, the first submitted is kept.
_INSERT_INVOICES = text(
    f"INSERT INTO invoices ({', '.join(_INVOICE_COLUMNS)}) "
    f"SELECT {', '.join('document::jsonb' if c == 'document' else c for c in _INVOICE_COLUMNS)} "
    f"FROM unnest({', '.join(':' + c for c in _INVOICE_COLUMNS)}) WITH ORDINALITY "
    f"AS row({', '.join(_INVOICE_COLUMNS)}, n) ORDER BY n "
    "ON CONFLICT DO NOTHING RETURNING id"
).bindparams(*(bindparam(c, type_=ARRAY(_ARRAY_TYPES.get(c, String()))) for c in _INVOICE_COLUMNS))


_ROLLED_BACK = ("40P01", "40001")  # deadlock, serialization failure: nothing was written, try again
_RETRIES = 3


class InvoiceWriter:
    """The process's group committer of received invoices: `await writer.store(receipt)` is True once
    the invoice is committed, False if its duplicate key or Idempotency-Key was taken (nothing of it stored).
    Raises what the group's transaction raised (a database error)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, window_seconds: float = 0.002,
                 max_items: int = 200):
        self._sessions = sessions
        self._group = GroupCommit(self._write, window_seconds=window_seconds, max_items=max_items)

    async def store(self, receipt: Receipt) -> bool:
        return await self._group.submit(receipt)

    @property
    def groups_written(self) -> int:
        return self._group.groups_written

    async def _write(self, receipts: list[Receipt]) -> list[bool]:
        refused: set[int] = set()
        retries = 0
        while True:  # once more without the receipts whose Idempotency-Key was taken meanwhile
            try:
                async with self._sessions() as session:  # closing it rolls back what was not committed
                    await session.begin()
                    stored = await self._write_once(session, receipts, refused)
                    if stored is None:
                        await session.rollback()
                        continue
                    await session.commit()
            except DBAPIError as exc:
                # PostgreSQL rolled the group back: two groups (two replicas) held each other's duplicate keys
                retries += 1
                if _sqlstate(exc) not in _ROLLED_BACK or retries > _RETRIES:
                    raise
                continue
            return stored  # the committed outbox rows went to the relay at commit

    async def _write_once(self, session: AsyncSession, receipts: list[Receipt], refused: set[int]) -> list[bool] | None:
        """The group's rows in the open transaction; None if an Idempotency-Key was taken (added to `refused`)."""
        candidates = [i for i in range(len(receipts)) if i not in refused]
        inserted = set((await session.execute(_INSERT_INVOICES, _columns(
            [receipts[i].rows.invoice for i in candidates]))).scalars()) if candidates else set()
        kept = [i for i in candidates if receipts[i].rows.invoice["id"] in inserted]
        taken_keys = [i for i in kept if receipts[i].idempotency is not None
                      and not await _remember(session, receipts[i].tenant_id, receipts[i].idempotency)]
        if taken_keys:
            refused.update(taken_keys)
            return None
        for model, attached in ((InvoicePdfRow, [receipts[i].rows.pdf for i in kept if receipts[i].rows.pdf]),
                                (InvoiceSourceRow, [receipts[i].rows.source for i in kept if receipts[i].rows.source])):
            if attached:
                await session.execute(insert(model.__table__), attached)
        await add_to_outbox(session, [receipts[i].event for i in kept])
        kept_set = set(kept)
        return [i in kept_set for i in range(len(receipts))]


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(getattr(exc.orig, "__cause__", None), "sqlstate", None)


def _columns(invoices: list[dict]) -> dict[str, list]:
    columns = {c: [invoice[c] for invoice in invoices] for c in _INVOICE_COLUMNS}
    columns["document"] = [json.dumps(document) for document in columns["document"]]
    return columns


async def _remember(session: AsyncSession, tenant_id: str, record: IdempotencyRecord) -> bool:
    """Store the response under the tenant's Idempotency-Key; False if the key is already taken."""
    row = (await session.execute(pg_insert(IdempotencyKeyRow.__table__).values(
        tenant_id=tenant_id, key=record.key, request_hash=record.request_hash, status=record.status,
        response_json=record.response_json).on_conflict_do_nothing().returning(IdempotencyKeyRow.key))).first()
    return row is not None


def invoice_writer(ctx) -> InvoiceWriter:
    """The process's writer (one per service host: tests run several hosts in one process)."""
    writer = ctx.extras.get("invoice_writer")
    if writer is None:
        writer = ctx.extras["invoice_writer"] = InvoiceWriter(ctx.sessions)
    return writer


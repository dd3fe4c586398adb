"""Storing received invoices by group commit: the invoices POSTed at about the same time share one
transaction (one BEGIN … COMMIT and one statement per table for the group instead of per invoice).
Each request still waits for the commit that holds its rows before it answers. A group of nothing but
invoices and their events (no Idempotency-Key, PDF or source document: the common case) is one
statement, atomic on its own: one round trip instead of four (BEGIN, two INSERTs, COMMIT), which is
most of what a group costs when the load is moderate and groups hold an invoice or two.

An invoice whose duplicate key (or Idempotency-Key) is already taken, by a committed invoice or by
another of the group, does not fail its neighbours: `ON CONFLICT DO NOTHING` leaves it out, and its
request hears `False` after the commit, then answers as it would have after its own failed INSERT."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg
from pydantic_core import to_json  # a quarter of json.dumps' time for the same JSON
from sqlalchemy.ext.asyncio import AsyncEngine

from parcours_runtime.db import driver_connection
from parcours_runtime.group_commit import GroupCommit
from parcours_runtime.outbox import (
    OutboxRow, StagedEvent, committed, insert_into_outbox, outbox_rows, staged_columns,
)
from parcours_ingest.store.invoices import InvoiceRows


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


_INVOICE_COLUMNS = {"id": "uuid", "tenant_id": "text", "number": "text", "issue_date": "date", "issue_year": "smallint",
                    "seller_key": "text", "due_date": "date", "currency": "text", "customer_ref": "text",
                    "total_incl_tax": "numeric", "document": "text", "has_pdf": "boolean", "source_format": "text",
                    "correlation_id": "text"}
# Arrays, not a multi-row VALUES: one statement text whatever the group's size, prepared once. ORDER BY n:
# of two invoices of a group with the same duplicate key, the first submitted is kept.
_INSERT_INVOICES = (
    f"INSERT INTO invoices ({', '.join(_INVOICE_COLUMNS)}) "
    f"SELECT {', '.join('document::jsonb' if c == 'document' else c for c in _INVOICE_COLUMNS)} "
    f"FROM unnest({', '.join(f'${i}::{kind}[]' for i, kind in enumerate(_INVOICE_COLUMNS.values(), 1))}) "
    f"WITH ORDINALITY AS row({', '.join(_INVOICE_COLUMNS)}, n) ORDER BY n "
    "ON CONFLICT DO NOTHING RETURNING id")
_N = len(_INVOICE_COLUMNS)
# The invoices, and the events of those inserted (an event's invoice id pairs them), in one statement.
_INSERT_INVOICES_AND_EVENTS = (
    f"WITH inserted AS ({_INSERT_INVOICES}), "
    "staged AS (INSERT INTO outbox (topic, key, payload, headers) SELECT topic, key, payload, headers::jsonb "
    f"FROM unnest(${_N + 1}::uuid[], ${_N + 2}::text[], ${_N + 3}::text[], ${_N + 4}::bytea[], ${_N + 5}::text[]) "
    "WITH ORDINALITY AS event(invoice_id, topic, key, payload, headers, n) "
    "WHERE invoice_id IN (SELECT id FROM inserted) ORDER BY n RETURNING id) "
    "SELECT id AS invoice_id, NULL::bigint AS outbox_id FROM inserted UNION ALL SELECT NULL, id FROM staged")
_INSERT_PDFS = "INSERT INTO invoice_pdfs (invoice_id, tenant_id, sha256, content) VALUES ($1, $2, $3, $4)"
_INSERT_SOURCES = ("INSERT INTO invoice_sources (invoice_id, tenant_id, media_type, sha256, content) "
                   "VALUES ($1, $2, $3, $4, $5)")
_REMEMBER = ("INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, response_json) "
             "VALUES ($1, $2, $3, $4, $5::json) ON CONFLICT DO NOTHING RETURNING key")

_ROLLED_BACK = ("40P01", "40001")  # deadlock, serialization failure: nothing was written, try again
_RETRIES = 3


class _KeyTaken(Exception):
    """An Idempotency-Key of the group was taken meanwhile: roll the group back."""


class InvoiceWriter:
    """The process's group committer of received invoices: `await writer.store(receipt)` is True once
    the invoice is committed, False if its duplicate key or Idempotency-Key was taken (nothing of it stored).
    Raises what the group's transaction raised (a database error).

    The hottest write of the platform, one per invoice received: on the driver connection
    (parcours_runtime.db.driver_connection), plain SQL, its outbox rows handed to the relay after the commit."""

    def __init__(self, engine: AsyncEngine, *, window_seconds: float, max_items: int = 200):
        self._engine = engine
        # At most the window, and about two POSTs' usual gap: concurrent clients waiting for their answers
        # come in bursts, and a fixed 10 ms window capped them at their number per 10 ms.
        self._group = GroupCommit(self._write, window_seconds=window_seconds, max_items=max_items, window_gaps=2)

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
                if all(_plain(receipt) for receipt in receipts):
                    async with driver_connection(self._engine) as connection:
                        stored, rows = await _write_plain(connection, receipts)
                else:
                    async with driver_connection(self._engine) as connection, connection.transaction():
                        stored, rows = await self._write_once(connection, receipts, refused)
            except _KeyTaken:
                continue
            except asyncpg.PostgresError as exc:
                # PostgreSQL rolled the group back: two groups (two replicas) held each other's duplicate keys
                retries += 1
                if exc.sqlstate not in _ROLLED_BACK or retries > _RETRIES:
                    raise
                continue
            committed(self._engine, rows)
            return stored

    async def _write_once(self, connection: asyncpg.Connection, receipts: list[Receipt],
                          refused: set[int]) -> tuple[list[bool], list[OutboxRow]]:
        """The group's rows in the open transaction (whether each receipt is stored, and the outbox rows);
        raises _KeyTaken if an Idempotency-Key was taken (added to `refused`)."""
        candidates = [i for i in range(len(receipts)) if i not in refused]
        inserted = {row[0] for row in await connection.fetch(_INSERT_INVOICES, *_columns(
            [receipts[i].rows.invoice for i in candidates]))} if candidates else set()
        kept = [i for i in candidates if receipts[i].rows.invoice["id"] in inserted]
        taken_keys = [i for i in kept if receipts[i].idempotency is not None
                      and not await _remember(connection, receipts[i].tenant_id, receipts[i].idempotency)]
        if taken_keys:
            refused.update(taken_keys)
            raise _KeyTaken
        pdfs = [receipts[i].rows.pdf for i in kept if receipts[i].rows.pdf]
        if pdfs:
            await connection.executemany(_INSERT_PDFS, [(pdf["invoice_id"], pdf["tenant_id"], pdf["sha256"],
                                                          pdf["content"]) for pdf in pdfs])
        sources = [receipts[i].rows.source for i in kept if receipts[i].rows.source]
        if sources:
            await connection.executemany(_INSERT_SOURCES, [
                (source["invoice_id"], source["tenant_id"], source["media_type"], source["sha256"], source["content"])
                for source in sources])
        outbox_rows = await insert_into_outbox(connection, [receipts[i].event for i in kept])
        kept_set = set(kept)
        return [i in kept_set for i in range(len(receipts))], outbox_rows


def _plain(receipt: Receipt) -> bool:
    return receipt.idempotency is None and not receipt.rows.pdf and not receipt.rows.source


async def _write_plain(connection: asyncpg.Connection,
                       receipts: list[Receipt]) -> tuple[list[bool], list[OutboxRow]]:
    """A group of plain receipts in one autocommitted statement: whether each is stored, and the outbox rows."""
    events = staged_columns([receipt.event for receipt in receipts])
    invoice_ids = [receipt.rows.invoice["id"] for receipt in receipts]
    written = await connection.fetch(_INSERT_INVOICES_AND_EVENTS,
                                     *_columns([receipt.rows.invoice for receipt in receipts]),
                                     invoice_ids, *events.parameters)
    inserted = {row[0] for row in written if row[0] is not None}
    kept = [i for i, invoice_id in enumerate(invoice_ids) if invoice_id in inserted]
    rows = outbox_rows([row[1] for row in written if row[1] is not None], events.only(kept))
    return [invoice_id in inserted for invoice_id in invoice_ids], rows


def _columns(invoices: list[dict]) -> list[list]:
    columns = {c: [invoice[c] for invoice in invoices] for c in _INVOICE_COLUMNS}
    columns["document"] = [to_json(document).decode() for document in columns["document"]]
    return list(columns.values())


async def _remember(connection: asyncpg.Connection, tenant_id: str, record: IdempotencyRecord) -> bool:
    """Store the response under the tenant's Idempotency-Key; False if the key is already taken."""
    return await connection.fetchval(_REMEMBER, tenant_id, record.key, record.request_hash, record.status,
                                     json.dumps(record.response_json)) is not None


def invoice_writer(ctx) -> InvoiceWriter:
    """The process's writer (one per service host: tests run several hosts in one process)."""
    writer = ctx.extras.get("invoice_writer")
    if writer is None:
        writer = ctx.extras["invoice_writer"] = InvoiceWriter(
            ctx.engine, window_seconds=ctx.settings.group_commit_window_ms / 1000)
    return writer


"""Queries on batches, their files and items, and the tenants' mapping profiles and split rules.

A worker claims a batch by giving it a fresh claim token and a lease (SKIP LOCKED: replicas never
wait for one another); every chunk it stores moves `processed_items` and renews the lease only while
the token is still its own, so a worker that lost its claim (it stalled past the lease and another
one resumed the batch) rolls its chunk back instead of storing it twice."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_ingest.store.batch_models import BatchFileRow, BatchItemRow, BatchRow, MappingProfileRow, SplitRuleRow

CLAIMABLE = ("pending", "processing")


async def add_batch(session: AsyncSession, *, batch_id: uuid.UUID, tenant_id: str, kind: str, options: dict,
                    filename: str | None, correlation_id: str | None, files: list[tuple[str, str, bytes]],
                    total_items: int | None = None) -> BatchRow:
    """A pending batch with its files `(name, media type, content)`."""
    row = BatchRow(id=batch_id, tenant_id=tenant_id, kind=kind, status="pending", options=options, filename=filename,
                   correlation_id=correlation_id, total_items=total_items)
    session.add(row)
    await session.flush()
    add_files(session, batch=row, files=files)
    await session.flush()
    return row


async def claim_batch(session: AsyncSession, *, lease: timedelta) -> BatchRow | None:
    """The oldest batch nobody holds (pending, or processing with its lease run out), now held under a new token."""
    candidate = (select(BatchRow.id)
                 .where(BatchRow.status.in_(CLAIMABLE),
                        (BatchRow.status == "pending") | (BatchRow.lease_until < func.now()))
                 .order_by(BatchRow.created_at).limit(1).with_for_update(skip_locked=True).scalar_subquery())
    claimed = await session.execute(
        update(BatchRow).where(BatchRow.id == candidate)
        .values(status="processing", claim_token=uuid.uuid4(), lease_until=func.now() + lease,
                attempts=BatchRow.attempts + 1, started_at=func.coalesce(BatchRow.started_at, func.now()))
        .returning(BatchRow).execution_options(populate_existing=True))
    return claimed.scalar_one_or_none()


async def batch_files(session: AsyncSession, *, batch_id: uuid.UUID) -> list[BatchFileRow]:
    return list((await session.execute(
        select(BatchFileRow).where(BatchFileRow.batch_id == batch_id).order_by(BatchFileRow.name))).scalars())


async def record_progress(session: AsyncSession, *, batch: BatchRow, items: list[BatchItemRow], lease: timedelta,
                          total_items: int) -> bool:
    """Stage the items and move the batch on past them, if the claim is still ours (else False: roll back)."""
    accepted = sum(1 for item in items if item.status == "accepted")
    moved = await session.execute(
        update(BatchRow).where(BatchRow.id == batch.id, BatchRow.claim_token == batch.claim_token)
        .values(processed_items=BatchRow.processed_items + len(items), total_items=total_items,
                accepted_items=BatchRow.accepted_items + accepted,
                rejected_items=BatchRow.rejected_items + len(items) - accepted, lease_until=func.now() + lease))
    if moved.rowcount != 1:
        return False
    session.add_all(items)
    await session.flush()
    return True


async def renew_lease(session: AsyncSession, *, batch: BatchRow, lease: timedelta) -> bool:
    """Push the lease back, if the claim is still ours."""
    renewed = await session.execute(update(BatchRow).where(BatchRow.id == batch.id,
                                                           BatchRow.claim_token == batch.claim_token)
                                    .values(lease_until=func.now() + lease))
    return renewed.rowcount == 1


async def finish_batch(session: AsyncSession, *, batch: BatchRow, status: str, error: dict | None = None,
                       total_items: int | None = None) -> bool:
    """Mark the batch done or failed, if the claim is still ours."""
    values: dict[str, Any] = {"status": status, "error": error, "claim_token": None, "lease_until": None,
                              "finished_at": func.now()}
    if total_items is not None:
        values["total_items"] = total_items
    done = await session.execute(update(BatchRow).where(BatchRow.id == batch.id,
                                                        BatchRow.claim_token == batch.claim_token).values(**values))
    return done.rowcount == 1


async def release_batch(session: AsyncSession, *, batch: BatchRow) -> None:
    """Give the batch back (pending) for another attempt."""
    await session.execute(update(BatchRow).where(BatchRow.id == batch.id, BatchRow.claim_token == batch.claim_token)
                          .values(status="pending", claim_token=None, lease_until=None))


async def get_batch(session: AsyncSession, *, tenant_id: str, batch_id: uuid.UUID) -> BatchRow | None:
    return (await session.execute(
        select(BatchRow).where(BatchRow.tenant_id == tenant_id, BatchRow.id == batch_id))).scalar_one_or_none()


async def latest_batches(session: AsyncSession, *, tenant_id: str, limit: int) -> list[BatchRow]:
    return list((await session.execute(select(BatchRow).where(BatchRow.tenant_id == tenant_id)
                                       .order_by(BatchRow.created_at.desc()).limit(limit))).scalars())


async def batch_items(session: AsyncSession, *, tenant_id: str, batch_id: uuid.UUID, status: str | None,
                      offset: int, limit: int) -> list[BatchItemRow]:
    query = select(BatchItemRow).where(BatchItemRow.tenant_id == tenant_id, BatchItemRow.batch_id == batch_id)
    if status is not None:
        query = query.where(BatchItemRow.status == status)
    return list((await session.execute(query.order_by(BatchItemRow.seq).offset(offset).limit(limit))).scalars())


async def batch_file(session: AsyncSession, *, tenant_id: str, batch_id: uuid.UUID, name: str) -> BatchFileRow | None:
    return (await session.execute(select(BatchFileRow).where(
        BatchFileRow.tenant_id == tenant_id, BatchFileRow.batch_id == batch_id, BatchFileRow.name == name))
    ).scalar_one_or_none()


def add_files(session: AsyncSession, *, batch: BatchRow, files: list[tuple[str, str, bytes]]) -> None:
    session.add_all(BatchFileRow(batch_id=batch.id, name=name, tenant_id=batch.tenant_id, media_type=media_type,
                                 content=content) for name, media_type, content in files)


# --- mapping profiles and split rules: named definitions per tenant -------------------------------

NamedModel = type[MappingProfileRow] | type[SplitRuleRow]


async def put_definition(session: AsyncSession, model: NamedModel, *, tenant_id: str, name: str,
                         definition: dict) -> bool:
    """Create or replace; True if it was created."""
    result = await session.execute(
        insert(model).values(tenant_id=tenant_id, name=name, definition=definition)
        .on_conflict_do_update(index_elements=["tenant_id", "name"],
                               set_={"definition": definition, "updated_at": func.now()})
        .returning(text("xmax = 0")))
    return bool(result.scalar_one())


async def get_definition(session: AsyncSession, model: NamedModel, *, tenant_id: str, name: str):
    return (await session.execute(select(model).where(model.tenant_id == tenant_id, model.name == name))
            ).scalar_one_or_none()


async def list_definitions(session: AsyncSession, model: NamedModel, *, tenant_id: str) -> list:
    return list((await session.execute(select(model).where(model.tenant_id == tenant_id).order_by(model.name))
                 ).scalars())


async def delete_definition(session: AsyncSession, model: NamedModel, *, tenant_id: str, name: str) -> bool:
    result = await session.execute(delete(model).where(model.tenant_id == tenant_id, model.name == name))
    return result.rowcount == 1

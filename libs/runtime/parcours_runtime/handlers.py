"""What a service hands the consumer loop for each event type (`ServiceDefinition.handlers`): a plain
handler (one event in the batch's unit of work), an `EffectHandler` (an outside effect performed for the
batch concurrently, then recorded) or a `BatchHandler` (all the batch's events of its type in one call),
and `PermanentError`, by which a handler says an event can never succeed (dead-lettered at once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from parcours_contracts.events import EventEnvelope
from parcours_runtime.uow import UnitOfWork

PlainHandler = Callable[[EventEnvelope, UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class EffectHandler:
    """An outside effect performed concurrently for a batch, then recorded in its transaction."""

    perform: Callable[[EventEnvelope], Awaitable[Any]]
    record: Callable[[EventEnvelope, Any, UnitOfWork], Awaitable[None]]
    concurrency: int = 64


@dataclass(frozen=True)
class BatchHandler:
    """Takes all the events of its type that stand together in a polled batch, in order, in one
    call (set-based SQL: one statement for N events). Its span links to each event's trace."""

    handle: Callable[[list[EventEnvelope], UnitOfWork], Awaitable[None]]
    # True when `handle` itself drops the events it applied before, in the same transaction (a table of
    # its own with a unique event id, as the tracker's journal): the consumer then claims no inbox row
    # for them (an insert per event that would only repeat that check). Redeliveries, and the same
    # event twice in one batch, reach `handle`.
    deduplicates: bool = False


Handler = PlainHandler | EffectHandler | BatchHandler

T = TypeVar("T")


def recorded_once(items: Iterable[T], recorded: set[UUID], event_id: Callable[[T], UUID]) -> list[T]:
    """For a BatchHandler that deduplicates: the items whose event id its own table took just now
    (`recorded`, from an INSERT … ON CONFLICT DO NOTHING RETURNING), each id once (its first copy), in
    order. Redeliveries, and a second copy in the same batch, drop out."""
    pending, once = set(recorded), []
    for item in items:
        if (key := event_id(item)) in pending:
            pending.discard(key)
            once.append(item)
    return once


class PermanentError(Exception):
    """The handler can never succeed with this event: dead-letter it without retrying."""

"""Unit of work: one session, one transaction; events raised go to the outbox in it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parcours_contracts.events import EventEnvelope
from parcours_runtime.outbox import StagedEvent, add_to_outbox, stage


class UnitOfWork:
    """`async with UnitOfWork(sessions) as uow: ...; uow.publish(e); await uow.commit()`.
    Leaving the block without commit rolls back, events included."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions
        self.session: AsyncSession
        self._events: list[StagedEvent] = []

    async def __aenter__(self) -> "UnitOfWork":
        self.session = self._sessions()
        await self.session.begin()
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()
        self._events.clear()

    def publish(self, *events: EventEnvelope) -> None:
        self._events.extend(stage(event) for event in events)

    async def commit(self) -> None:
        await add_to_outbox(self.session, self._events)  # the commit hands them to the relay
        self._events.clear()
        await self.session.commit()

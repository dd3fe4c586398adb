"""Kafka clients as Parcours uses them: acks=all, no idempotence (Tansu has none), no
auto-commit, topics created up front."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=30000,
    )


async def ensure_topics(bootstrap_servers: str, names: tuple[str, ...] | list[str], partitions: int) -> None:
    """Create whichever of `names` do not exist yet. Safe to run from several services at once."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="parcours-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        try:
            await admin.create_topics([NewTopic(n, partitions, 1) for n in missing])
        except TopicAlreadyExistsError:
            pass  # another service created them first
    finally:
        await admin.close()


async def wait_for_broker(bootstrap_servers: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="parcours-probe")
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"Kafka at {bootstrap_servers} unreachable: {exc}") from exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()

"""Dead-letter topics and the `parcours-dlq` command.

A message that cannot be handled (unparseable, or still failing after N attempts) goes to
`<topic>.dlq` with its original key, value and headers, plus headers saying why and where
it came from. `parcours-dlq replay TOPIC` re-injects it on the original topic."""

from __future__ import annotations

import asyncio
import json

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from parcours_contracts import topics
from parcours_runtime.kafka import make_producer

H_ERROR = "parcours-error"
H_ATTEMPTS = "parcours-attempts"
H_CONSUMER = "parcours-consumer"
H_TOPIC = "parcours-original-topic"
H_PARTITION = "parcours-original-partition"
H_OFFSET = "parcours-original-offset"
DLQ_HEADERS = (H_ERROR, H_ATTEMPTS, H_CONSUMER, H_TOPIC, H_PARTITION, H_OFFSET)


async def send_to_dlq(producer: AIOKafkaProducer, record: ConsumerRecord, *, consumer: str, error: str, attempts: int) -> None:
    original = [(k, v) for k, v in (record.headers or ()) if k not in DLQ_HEADERS]
    headers = original + [
        (H_ERROR, error[:2000].encode()),
        (H_ATTEMPTS, str(attempts).encode()),
        (H_CONSUMER, consumer.encode()),
        (H_TOPIC, record.topic.encode()),
        (H_PARTITION, str(record.partition).encode()),
        (H_OFFSET, str(record.offset).encode()),
    ]
    await producer.send_and_wait(topics.dlq(record.topic), record.value, key=record.key, headers=headers)


def describe(record: ConsumerRecord) -> dict:
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    return {
        "dlq_offset": record.offset,
        "partition": record.partition,
        "key": record.key.decode(errors="replace") if record.key else None,
        "error": headers.get(H_ERROR),
        "attempts": headers.get(H_ATTEMPTS),
        "consumer": headers.get(H_CONSUMER),
        "original": f"{headers.get(H_TOPIC)}[{headers.get(H_PARTITION)}]@{headers.get(H_OFFSET)}",
    }


async def _drain(bootstrap: str, topic: str, group: str | None):
    """Yield the DLQ records after `group`'s committed position (all of them without a group),
    up to the end offsets seen at the start, and the rest of the record batch that reaches
    them (Tansu reports a partition's end as its last batch's base offset + 1, so a batch of
    several records would otherwise be cut). Partitions are assigned by hand: no rebalance
    to wait for, and the read ends deterministically."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()  # loads the cluster metadata
        partitions = [TopicPartition(topics.dlq(topic), p) for p in consumer.partitions_for_topic(topics.dlq(topic)) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    yield consumer, tp, record
    finally:
        await consumer.stop()


async def replay(bootstrap: str, topic: str, group: str = "parcours-dlq-replay") -> int:
    """Re-inject every dead letter of `topic` not yet replayed by `group`; returns the count."""
    producer = make_producer(bootstrap, "parcours-dlq-replay")
    await producer.start()
    count = 0
    try:
        async for consumer, tp, record in _drain(bootstrap, topic, group):
            original = [(k, v) for k, v in (record.headers or ()) if k not in DLQ_HEADERS]
            await producer.send_and_wait(topic, record.value, key=record.key, headers=original)
            await consumer.commit({tp: record.offset + 1})
            count += 1
    finally:
        await producer.stop()
    return count


async def peek(bootstrap: str, topic: str) -> list[dict]:
    """Every dead letter of `topic`, without consuming (a throwaway group that never commits)."""
    return [describe(r) async for _, _, r in _drain(bootstrap, topic, None)]


cli = typer.Typer(help="Inspect and replay Parcours dead-letter topics.", no_args_is_help=True)
_BOOTSTRAP = typer.Option("127.0.0.1:9092", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers")


@cli.command("list")
def list_cmd(topic: str = typer.Argument(..., help="Original topic, e.g. invoice.received"), bootstrap: str = _BOOTSTRAP):
    """Print the dead letters of TOPIC as JSON lines."""
    for item in asyncio.run(peek(bootstrap, topic)):
        typer.echo(json.dumps(item))


@cli.command("replay")
def replay_cmd(topic: str = typer.Argument(..., help="Original topic, e.g. invoice.received"), bootstrap: str = _BOOTSTRAP):
    """Re-publish the dead letters of TOPIC on TOPIC (each one once)."""
    typer.echo(f"replayed {asyncio.run(replay(bootstrap, topic))} message(s) from {topics.dlq(topic)} to {topic}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

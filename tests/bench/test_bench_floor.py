"""The bare pipeline's floor variant (`--floor`) does what it claims to measure: contract events
flow hop to hop, each stage claims them in its own inbox and relays what it raises through its own
outbox, which is empty once the rows are produced. Real broker, PostgreSQL and SMTP sink; no timing."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bare import BarePipeline, parse_args  # noqa: E402
from parcours_contracts import DispatchRequested, InvoiceDispatched, InvoiceReceived  # noqa: E402
from parcours_devstack.smtp_sink import SmtpSink  # noqa: E402

INVOICES = 30


async def test_the_floor_moves_contract_events_through_every_stages_inbox_and_outbox(make_database, kafka, read_topic):
    dsn = make_database("floor").replace("postgresql+asyncpg://", "postgresql://")
    async with SmtpSink() as sink:
        pipeline = BarePipeline(parse_args(["--bootstrap", kafka, "--dsn", dsn, "--smtp-port", str(sink.smtp_port),
                                            "--invoices", str(INVOICES), "--batch", "8", "--floor"]))
        result = await pipeline.run()
        assert len(sink.messages()) == INVOICES

    assert result["floor"] and result["mails_sent"] == INVOICES
    received = await read_topic(pipeline.topics["invoice.received"], lambda events: len(events) >= INVOICES)
    requested = await read_topic(pipeline.topics["dispatch.requested"], lambda events: len(events) >= INVOICES)
    dispatched = await read_topic(pipeline.topics["invoice.dispatched"], lambda events: len(events) >= INVOICES)
    assert [type(e) for e in received + requested + dispatched] == \
        [InvoiceReceived] * INVOICES + [DispatchRequested] * INVOICES + [InvoiceDispatched] * INVOICES
    invoices = {e.invoice_id for e in received}
    assert len(invoices) == INVOICES
    assert {e.invoice_id for e in requested} == {e.invoice_id for e in dispatched} == invoices
    assert {e.dispatch_id for e in dispatched} == {e.dispatch_id for e in requested}, "each hop follows its cause"

    connection = await asyncpg.connect(dsn)
    try:
        for stage, consumed in (("router", received), ("channels", requested), ("tracker", dispatched)):
            claimed = await connection.fetch(f'SELECT consumer, event_id FROM "bare_{stage}".inbox')
            assert {(row["consumer"], row["event_id"]) for row in claimed} == {(stage, e.event_id) for e in consumed}
        for stage in ("source", "router", "channels"):
            assert await connection.fetchval(f'SELECT count(*) FROM "bare_{stage}".outbox') == 0, \
                f"{stage}: every row the relay produced is deleted"
            assert await connection.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'outbox'",
                f"bare_{stage}") == 1, "each stage writes its own outbox, as each service has its own database"
    finally:
        await connection.close()

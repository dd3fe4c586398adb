"""`POST /v1/invoices` by group commit: requests that arrive together share one transaction, and one
whose invoice or Idempotency-Key is taken, or whose text PostgreSQL cannot store, does not fail its neighbours:
each answers as it would alone."""

from __future__ import annotations

import asyncio
import uuid

from parcours_contracts import InvoiceReceived, topics
from parcours_ingest.store.models import IdempotencyKeyRow, InvoiceRow
from parcours_ingest.store.receiving import InvoiceWriter, Receipt

PROBLEM_JSON = "application/problem+json"


async def test_conflicting_requests_in_one_group_do_not_fail_their_neighbours(
        ingest, client, acme, make_invoice, read_events, count_rows):
    assert (await client.post("/v1/invoices", json=make_invoice("G-OLD"), headers=acme)).status_code == 202
    fresh = [make_invoice(f"G-NEW-{i}") for i in range(4)]
    twice = [make_invoice("G-TWICE"), make_invoice("G-TWICE")]
    twice[1]["buyer"]["customer_ref"] = "CUST-OTHER"
    retried = make_invoice("G-RETRY")
    reused = [make_invoice("G-KEY-1"), make_invoice("G-KEY-2")]
    unstorable = make_invoice("G-NUL")
    unstorable["buyer"]["name"] = "Dupont\u0000SARL"  # PostgreSQL would refuse the group's statement
    posts = ([(body, acme) for body in fresh] + [(body, acme) for body in twice]
             + [(make_invoice("G-OLD"), acme)] + [(retried, {**acme, "Idempotency-Key": "retry"})] * 2
             + [(body, {**acme, "Idempotency-Key": "reused"}) for body in reused] + [(unstorable, acme)])
    # every request below but the unstorable one (refused before) lands in the same transaction: it is written
    # once the last one has come
    writer = ingest.ctx.extras["invoice_writer"] = InvoiceWriter(ingest.ctx.engine, window_seconds=600,
                                                                 max_items=len(posts) - 1)
    answers = await asyncio.gather(*(client.post("/v1/invoices", json=body, headers=headers) for body, headers in posts))
    assert writer.groups_written == 1

    fresh_answers, twice_answers, old_answer, retry_answers, reused_answers, unstorable_answer = (
        answers[:4], answers[4:6], answers[6], answers[7:9], answers[9:11], answers[11])
    assert [a.status_code for a in fresh_answers] == [202] * 4
    assert sorted(a.status_code for a in twice_answers) == [202, 409]
    assert old_answer.status_code == 409 and old_answer.headers["content-type"] == PROBLEM_JSON
    assert old_answer.json()["type"].endswith("/duplicate-invoice-number")
    assert [a.status_code for a in retry_answers] == [202, 202] and retry_answers[0].json() == retry_answers[1].json()
    assert sorted(a.status_code for a in reused_answers) == [202, 422]
    assert next(a for a in reused_answers if a.status_code == 422).json()["type"].endswith("/idempotency-key-reuse")
    assert unstorable_answer.status_code == 422 and unstorable_answer.json()["type"].endswith("/unstorable-text")
    assert [e["pointer"] for e in unstorable_answer.json()["errors"]] == ["/buyer/name"]

    numbers = ["G-OLD", *(f"G-NEW-{i}" for i in range(4)), "G-TWICE", "G-RETRY", "G-KEY"]
    assert await count_rows(ingest, InvoiceRow) == len(numbers)
    assert await count_rows(ingest, IdempotencyKeyRow) == 2
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(
        [e for e in es if isinstance(e, InvoiceReceived) and e.invoice.number.startswith("G-")]) >= len(numbers))
    published = sorted(e.invoice.number for e in events if isinstance(e, InvoiceReceived))
    assert len(published) == len(numbers) and published.count("G-TWICE") == 1
    accepted = {a.json()["invoice_id"] for a in answers if a.status_code == 202}
    assert {str(e.invoice_id) for e in events if isinstance(e, InvoiceReceived) and e.invoice.number != "G-OLD"} == accepted


async def test_a_group_of_plain_invoices_keeps_the_events_of_those_stored(
        ingest, client, acme, make_invoice, read_events, count_rows):
    """No Idempotency-Key, PDF or source document: the group is one statement, and only the invoices it
    inserted have their InvoiceReceived written (a duplicate of the group or of a stored invoice has none)."""
    assert (await client.post("/v1/invoices", json=make_invoice("P-OLD"), headers=acme)).status_code == 202
    bodies = [make_invoice("P-NEW-1"), make_invoice("P-TWICE"), make_invoice("P-OLD"), make_invoice("P-TWICE"),
              make_invoice("P-NEW-2")]
    writer = ingest.ctx.extras["invoice_writer"] = InvoiceWriter(ingest.ctx.engine, window_seconds=600,
                                                                 max_items=len(bodies))
    answers = await asyncio.gather(*(client.post("/v1/invoices", json=body, headers=acme) for body in bodies))
    assert writer.groups_written == 1

    assert [a.status_code for a in answers] == [202, 202, 409, 409, 202]  # of two in a group, the first is kept
    assert await count_rows(ingest, InvoiceRow) == 4
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(
        [e for e in es if isinstance(e, InvoiceReceived) and e.invoice.number.startswith("P-")]) >= 4)
    published = {str(e.invoice_id): e.invoice.number for e in events
                 if isinstance(e, InvoiceReceived) and e.invoice.number != "P-OLD"}
    assert published == {answers[i].json()["invoice_id"]: bodies[i]["number"] for i in (0, 1, 4)}


async def test_groups_holding_each_others_invoices_each_answer(ingest, make_invoice, count_rows):
    """Two groups insert the same two invoices in opposite orders (two replicas): whichever PostgreSQL lets
    through (or rolls back as a deadlock, then retries), each invoice is stored once and every request hears."""
    from parcours_ingest.api.invoices import summarise
    from parcours_ingest.domain.invoice import Invoice
    from parcours_ingest.store.invoices import invoice_rows
    from parcours_runtime.outbox import stage

    def receipt(number: str) -> Receipt:
        invoice = Invoice.model_validate(make_invoice(number))
        invoice_id = uuid.uuid4()
        return Receipt(tenant_id="acme", rows=invoice_rows(tenant_id="acme", invoice_id=invoice_id, invoice=invoice,
                                                           correlation_id=str(invoice_id)),
                       event=stage(InvoiceReceived(tenant_id="acme", invoice_id=invoice_id,
                                                   correlation_id=str(invoice_id), invoice=summarise(invoice))))

    first, second = (InvoiceWriter(ingest.ctx.engine, window_seconds=600, max_items=2) for _ in range(2))
    answers = await asyncio.gather(*(writer.store(receipt(number)) for writer, number in (
        (first, "X-1"), (first, "X-2"), (second, "X-2"), (second, "X-1"))))

    assert sorted(answers) == [False, False, True, True]
    assert answers[0] != answers[3] and answers[1] != answers[2]
    assert await count_rows(ingest, InvoiceRow) == 2

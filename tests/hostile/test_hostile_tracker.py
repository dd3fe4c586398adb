"""Hostile input on the tracker: partner ack webhooks (forged, stale, replayed, oversize), camt.053 bank
statements (XXE, billion laughs, foreign XML, broken encodings) and the payments API (negative, zero,
over-precise amounts, dates out of range) — each refused with a 4xx problem+json, nothing stored or
published, the tracker still healthy. A valid ack is accepted once before the replays."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import httpx

from parcours_contracts import InvoiceReceived, InvoiceSummary
from parcours_tracker.domain.acks import sign_ack

from .conftest import BODY_TIMEOUT, Case, json_body_cases, raw  # noqa: TID252

SECRET = "dev-ack-secret"


def signed(body: dict | bytes, *, secret: str = SECRET, at: float | None = None, signature: str | None = None) -> dict:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = str(int(at if at is not None else time.time()))
    return {"content": content, "headers": {"Content-Type": "application/json", "X-Parcours-Timestamp": timestamp,
                                            "X-Parcours-Signature": signature or sign_ack(secret, timestamp, content)}}


def ack(ctx, **change) -> dict:
    return {"tenant_id": "acme", "invoice_id": str(ctx.invoice_id), "ack_id": "ACK-1", **change}


def ack_case(name: str, build, status: int, channel: str = "edi") -> Case:
    return Case(f"ack-{name}", "POST", f"/v1/acks/{channel}", build, status)


ACK_CASES = [
    ack_case("forged-signature", lambda ctx: signed(ack(ctx, ack_id="ACK-2"), secret="guessed"), 401),
    ack_case("signature-of-other-body", lambda ctx: {**signed(ack(ctx, ack_id="ACK-2")),
                                                     "content": json.dumps(ack(ctx, ack_id="ACK-3")).encode()}, 401),
    ack_case("empty-signature", lambda ctx: signed(ack(ctx, ack_id="ACK-2"), signature="v1="), 401),
    ack_case("stale-timestamp", lambda ctx: signed(ack(ctx, ack_id="ACK-2"), at=time.time() - 3600), 401),
    ack_case("future-timestamp", lambda ctx: signed(ack(ctx, ack_id="ACK-2"), at=time.time() + 3600), 401),
    ack_case("timestamp-not-a-number", lambda ctx: {**signed(ack(ctx, ack_id="ACK-2")), "headers": {
        **signed(ack(ctx, ack_id="ACK-2"))["headers"], "X-Parcours-Timestamp": "yesterday"}}, 401),
    ack_case("unsigned", lambda ctx: {"json": ack(ctx, ack_id="ACK-2")}, 401),
    # the delivery acked once already: its replay a while later, and another body under its id
    ack_case("replay-stale", lambda ctx: signed(ack(ctx), at=time.time() - 400), 401),
    ack_case("replay-other-body", lambda ctx: signed(ack(ctx, status="refused")), 409),
    ack_case("other-tenant", lambda ctx: signed(ack(ctx, ack_id="ACK-4", tenant_id="globex")), 404),
    ack_case("unknown-invoice", lambda ctx: signed(ack(ctx, ack_id="ACK-5", invoice_id=str(uuid.uuid4()))), 404),
    ack_case("unknown-channel", lambda ctx: signed(ack(ctx, ack_id="ACK-6")), 404, channel="carrier_pigeon"),
    ack_case("not-json", lambda ctx: signed(b"{not json"), 422),
    ack_case("broken-utf8", lambda ctx: signed(json.dumps(ack(ctx, ack_id="ACK-7")).encode().replace(b"ACK", b"\xff")),
             422),
    ack_case("extra-field", lambda ctx: signed(ack(ctx, ack_id="ACK-8", admin=True)), 422),
    ack_case("ack-in-the-future", lambda ctx: signed(ack(ctx, ack_id="ACK-9", acked_at="2099-01-01T00:00:00Z")), 422),
    ack_case("too-big", lambda ctx: signed(ack(ctx, ack_id="ACK-10", status="x" * 70_000)), 413),
    ack_case("deep-nesting", lambda ctx: signed(b'{"a":' * 50_000 + b"1" + b"}" * 50_000), 413),
]

CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def statement(entry: str = "", *, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>', namespace: str = CAMT) -> bytes:
    entry = entry or (f'<Ntry><Amt Ccy="EUR">1200.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>'
                      f"2026-11-20</Dt></BookgDt><NtryDtls><TxDtls><RmtInf><Ustrd>F-2026-001</Ustrd></RmtInf>"
                      f"</TxDtls></NtryDtls></Ntry>")
    return (f'{prolog}<Document xmlns="{namespace}"><BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId>'
            f"<CreDtTm>2026-11-21T06:00:00</CreDtTm></GrpHdr><Stmt><Id>S1</Id><CreDtTm>2026-11-21T06:00:00</CreDtTm>"
            f"<Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>{entry}</Stmt></BkToCstmrStmt>"
            f"</Document>").encode()


def xml_case(name: str, content: bytes, status: int | None = None, content_type: str = "application/xml") -> Case:
    return Case(f"camt-{name}", "POST", "/v1/payments/camt053", raw(content, content_type), status)


LAUGHS = '<!DOCTYPE d [<!ENTITY a0 "ha">' + "".join(
    f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)) + "]>"
CAMT_CASES = [
    xml_case("xxe-file", statement(prolog='<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
                                   entry="<Ntry><AddtlNtryInf>&x;</AddtlNtryInf></Ntry>")),
    xml_case("xxe-network", statement(prolog='<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM '
                                             '"http://127.0.0.1:9/x">]>', entry="<Ntry>&x;</Ntry>")),
    xml_case("billion-laughs", statement(prolog='<?xml version="1.0"?>' + LAUGHS, entry="<Ntry>&a9;</Ntry>")),
    xml_case("external-dtd", statement(prolog='<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/d.dtd">')),
    xml_case("parameter-entity", statement(prolog='<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM '
                                                  '"http://127.0.0.1:9/p.dtd"> %p;]>')),
    xml_case("deep-nesting", statement(entry="<Ntry>" + "<a>" * 5000 + "</a>" * 5000 + "</Ntry>")),
    xml_case("broken-utf8", statement().replace(b"F-2026-001", b"F-\xff\xfe-001")),
    xml_case("utf16", statement().decode().replace("UTF-8", "UTF-16").encode("utf-16")),
    xml_case("truncated", statement()[:200]),
    xml_case("empty", b""),
    xml_case("not-xml", b"%PDF-1.7 not a statement"),
    xml_case("html", b"<html><body>statement</body></html>"),
    xml_case("camt054", statement(namespace="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02")),
    xml_case("pain001", statement(namespace="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03")),
    xml_case("json-body", b'{"statement": 1}', content_type="application/json"),
    xml_case("text-plain", statement(), content_type="text/plain"),
    xml_case("no-content-type", statement(), content_type=None),
    xml_case("oversize", statement(entry="<Ntry>" + "x" * (13 * 2**20) + "</Ntry>"), 413),
]


def payment(**change) -> dict:
    return {"payment_id": "P-1", "amount": "100.00", "paid_on": date.today().isoformat(), **change}


def payment_case(name: str, expected: int, pointer: str | None = None, **change) -> Case:
    return Case(f"payment-{name}", "POST", "/v1/invoices/{invoice_id}/payments", lambda ctx: {"json": payment(**change)},
                expected, pointer=pointer)


PAYMENT_CASES = [
    *json_body_cases("payment", "POST", "/v1/invoices/{invoice_id}/payments", lambda ctx: payment(),
                     text_field="payment_id"),
    payment_case("negative", 422, "/amount", amount="-100.00"),
    payment_case("zero", 422, "/amount", amount="0"),
    payment_case("three-decimals", 422, "/amount", amount="100.001"),
    payment_case("nan", 422, "/amount", amount="NaN"),
    payment_case("huge", 422, "/amount", amount="1" + "0" * 30),
    payment_case("bad-currency", 422, "/currency", currency="euro"),
    payment_case("year-0", 422, "/paid_on", paid_on="0000-01-01"),
    payment_case("february-30", 422, "/paid_on", paid_on="2026-02-30"),
    payment_case("unknown-status", 422, "/status", status="cashed_by_mallory"),
    payment_case("more-than-due", 422, None, payment_id="P-BIG", amount="999999.00"),
    Case("payment-unknown-invoice", "POST", f"/v1/invoices/{uuid.uuid4()}/payments", lambda ctx: {"json": payment()},
         404),
    Case("payment-invoice-not-a-uuid", "POST", "/v1/invoices/1%20OR%201=1/payments", lambda ctx: {"json": payment()},
         422),
    Case("event-unknown-kind", "POST", "/v1/invoices/{invoice_id}/events", lambda ctx: {"json": {"kind": "paid"}}, 422),
    Case("event-dispute-without-reason", "POST", "/v1/invoices/{invoice_id}/events",
         lambda ctx: {"json": {"kind": "disputed"}}, 422),
    Case("event-promise-in-year-1", "POST", "/v1/invoices/{invoice_id}/events",
         lambda ctx: {"json": {"kind": "promise_to_pay", "promised_on": "0001-01-01"}}, 422),
]


async def test_tracker_refuses_hostile_acks_statements_and_payments(run_service, tenant_key, publish, eventually,
                                                                   attack):
    tracker = await run_service("tracker", **BODY_TIMEOUT)
    key = await tenant_key(tracker)
    invoice_id = uuid.uuid4()
    summary = InvoiceSummary(number="F-2026-001", issue_date=date.today(), due_date=date.today() + timedelta(days=30),
                             currency="EUR", total_excl_tax=Decimal("1000.00"), total_tax=Decimal("200.00"),
                             total_incl_tax=Decimal("1200.00"), seller_name="ACME SAS", buyer_name="Globex SARL",
                             customer_ref="CUST-1")
    await publish(InvoiceReceived(tenant_id="acme", invoice_id=invoice_id, correlation_id=f"corr-{invoice_id}",
                                  invoice=summary))
    async with httpx.AsyncClient(base_url=tracker.url, headers={"Authorization": f"Bearer {key}"}) as client:
        async def known():
            return (await client.get(f"/v1/invoices/{invoice_id}/journey")).status_code == 200
        await eventually(known, what="the invoice known to the tracker")
        ctx = SimpleNamespace(invoice_id=invoice_id)
        first = await client.post("/v1/acks/edi", **signed(ack(ctx)))
        assert first.status_code == 202, first.text
    cases = [Case(c.name, c.method, c.path.replace("{invoice_id}", str(invoice_id)), c.request, c.status, c.slug,
                  c.pointer) for c in ACK_CASES + CAMT_CASES + PAYMENT_CASES]
    await attack(tracker, key, cases, ctx)

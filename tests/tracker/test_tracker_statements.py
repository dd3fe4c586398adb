"""Bank statements (ISO 20022 camt.053) on the real broker and DB: lines matched by reference,
invoice number or amount, partial payments, unmatched lines reported, 212 and PaymentRecorded
(source camt053) once paid, a re-import recording nothing twice; hostile or foreign XML refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from parcours_contracts import PaymentRecorded, topics
from parcours_tracker.domain.camt053 import StatementError, parse_statement, rf_reference, rf_valid
from parcours_tracker.store.models import JournalEntry, Payment

V2 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
V8 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
XML = {"Content-Type": "application/xml"}


def entry(amount: str, *, credit: bool = True, booked: bool = True, ref: str | None = None, ustrd: str | None = None,
          e2e: str | None = None, debtor: str | None = None, bank_ref: str | None = None, version: str = V2,
          booked_on: str = "2026-11-20") -> str:
    """One Ntry with one TxDtls, in the shape of `version` (02: Sts text, TxAmt; 08: Sts/Cd, Amt)."""
    status = "<Sts>BOOK</Sts>" if booked else "<Sts>PDNG</Sts>"
    tx_amount = f'<AmtDtls><TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls>'
    if version == V8:
        status = f"<Sts><Cd>{'BOOK' if booked else 'PDNG'}</Cd></Sts>"
        tx_amount = f'<Amt Ccy="EUR">{amount}</Amt>'
    remittance = ""
    if ref or ustrd:
        remittance = "<RmtInf>" + (f"<Ustrd>{ustrd}</Ustrd>" if ustrd else "") + (
            f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{ref}</Ref></CdtrRefInf></Strd>"
            if ref else "") + "</RmtInf>"
    return f"""<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd>{status}
      <BookgDt><Dt>{booked_on}</Dt></BookgDt><ValDt><Dt>{booked_on}</Dt></ValDt>
      {f'<AcctSvcrRef>{bank_ref}</AcctSvcrRef>' if bank_ref else ''}
      <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
      <NtryDtls><TxDtls><Refs>{f'<AcctSvcrRef>{bank_ref}-1</AcctSvcrRef>' if bank_ref else ''}
        <EndToEndId>{e2e or 'NOTPROVIDED'}</EndToEndId></Refs>{tx_amount}
        {f'<RltdPties><Dbtr><Nm>{debtor}</Nm></Dbtr></RltdPties>' if debtor else ''}{remittance}
      </TxDtls></NtryDtls></Ntry>"""


def statement(*entries: str, version: str = V2, message_id: str = "MSG-2026-11-20") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{version}"><BkToCstmrStmt>
  <GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>2026-11-21T06:00:00</CreDtTm></GrpHdr>
  <Stmt><Id>STMT-{message_id}</Id><CreDtTm>2026-11-21T06:00:00</CreDtTm>
    <Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id><Ccy>EUR</Ccy></Acct>
    {''.join(entries)}
  </Stmt></BkToCstmrStmt></Document>""".encode()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_both_shapes_of_a_statement_read_the_same():
    for version in (V2, V8):
        parsed = parse_statement(statement(
            entry("1200.00", ref=rf_reference("F-2026-001"), debtor="Globex SARL", bank_ref="B1", version=version),
            entry("50.00", credit=False, version=version), entry("10.00", booked=False, version=version),
            version=version))
        assert parsed.account == "FR7630006000011234567890189" and parsed.statements == ["STMT-MSG-2026-11-20"]
        first, debit, pending = parsed.lines
        assert (first.position, first.amount, first.currency, first.debtor, first.bank_reference) == \
            ("1/1/1", Decimal("1200.00"), "EUR", "Globex SARL", "B1-1")
        assert first.payment and not debit.payment and not pending.payment
        assert first.reference_keys()[0] == "F2026001"


def test_what_a_line_quotes():
    line = parse_statement(statement(entry("10.00", ustrd="Facture f-2026/007, merci", e2e="E2E-9"))).lines[0]
    assert line.quoted_keys()[0] == "E2E9" and {"FACTURE", "F2026007", "MERCI"} <= set(line.quoted_keys())
    spaced = parse_statement(statement(entry("10.00", ustrd="Acompte F 2026 102"))).lines[0]
    assert "F2026102" in spaced.quoted_keys() and "F" not in spaced.quoted_keys()
    assert rf_valid(rf_reference("F-2026-001")) and not rf_valid("RF00F2026001")
    assert rf_reference("539007547034") == "RF18539007547034"  # the ISO 11649 example


@pytest.mark.parametrize("raw, status, slug", [
    (b"<Document", 400, "malformed-xml"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Document>&b;</Document>',
     422, "unsafe-xml"),
    (b'<!DOCTYPE d SYSTEM "file:///etc/passwd"><Document/>', 422, "unsafe-xml"),
    (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"><BkToCstmrDbtCdtNtfctn/></Document>',
     422, "not-camt053"),
    (statement(entry("12,00")), 422, "invalid-statement"),
])
def test_foreign_or_hostile_xml_is_refused(raw, status, slug):
    with pytest.raises(StatementError) as refused:
        parse_statement(raw)
    assert (refused.value.status, refused.value.slug) == (status, slug)


async def _known(client, key, publish, flow, eventually, **names):
    flows = {name: flow(number=number) for name, number in names.items()}
    for f in flows.values():
        await publish(f.received(0), f.dispatched(2))

    async def all_sent():
        for f in flows.values():
            journey = (await client.get(f"/v1/invoices/{f.invoice_id}/journey", headers=auth(key))).json()
            if journey.get("status") != "sent" or journey.get("number") is None:  # sent, and its amount known
                return False
        return True
    await eventually(all_sent, what="invoices sent")
    return flows


async def _journal_size(tracker) -> tuple[int, int]:
    async with tracker.ctx.sessions() as session:
        return ((await session.execute(select(func.count()).select_from(JournalEntry))).scalar_one(),
                (await session.execute(select(func.count()).select_from(Payment))).scalar_one())


async def test_a_statement_pays_invoices_by_reference_number_and_amount(tracker, client, tenant_key, publish, flow,
                                                                      eventually, read_topic):
    key = await tenant_key(tracker)
    f = await _known(client, key, publish, flow, eventually, by_rf="F-2026-101", by_text="F-2026-102",
                     by_amount="F-2026-103", twice="F-2026-104")
    await client.post(f"/v1/invoices/{f['by_amount'].invoice_id}/payments", headers=auth(key),
                      json={"payment_id": "ERP-1", "amount": "200.00", "paid_on": "2026-11-02"})  # 1000.00 open
    raw = statement(
        entry("1200.00", ref=rf_reference("F-2026-101"), bank_ref="B-1", debtor="Globex SARL"),
        entry("300.00", ustrd="Acompte facture F 2026 102", bank_ref="B-2"),
        entry("1000.00", ustrd="VIREMENT GLOBEX", bank_ref="B-3"),
        entry("1200.00", ustrd="F-2026-104 F-2026-999", bank_ref="B-4", booked_on="2026-11-21"),
        entry("1200.00", ustrd="F-2026-104 F-2026-999", bank_ref="B-5"),
        entry("77.00", ustrd="unknown", bank_ref="B-6"),
        entry("5000.00", ustrd="F-2026-102", bank_ref="B-7"),
        entry("99.00", credit=False, bank_ref="B-8"))
    response = await client.post("/v1/payments/camt053", content=raw, headers=XML | auth(key))
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["lines"], report["recorded"], report["unmatched"], report["ignored"]) == (8, 4, 3, 1)
    items = {item["bank_reference"]: item for item in report["items"]}
    rf, text, amount, twice = items["B-1-1"], items["B-2-1"], items["B-3-1"], items["B-4-1"]
    assert (rf["outcome"], rf["matched_by"], rf["number"], rf["status"], rf["code"], rf["fully_paid"]) == \
        ("recorded", "reference", "F-2026-101", "ENCAISSEE", 212, True)
    assert (text["matched_by"], text["open_amount"], text["fully_paid"], text["status"]) == \
        ("number", "900.00", False, "sent"), "a partial payment"
    assert (amount["matched_by"], amount["number"], amount["status"]) == ("amount", "F-2026-103", "ENCAISSEE")
    assert (twice["number"], twice["status"]) == ("F-2026-104", "ENCAISSEE")
    assert "more than the open amount" in items["B-5-1"]["reason"], "the same invoice cannot be paid twice"
    assert items["B-6-1"]["outcome"] == "unmatched" and items["B-6-1"]["invoice_id"] is None
    assert "more than the open amount" in items["B-7-1"]["reason"]
    assert (items["B-8-1"]["outcome"], items["B-8-1"]["reason"]) == ("ignored", "a debit: not a payment received")

    recorded = await read_topic(topics.PAYMENT_EVENTS, until=lambda events: len(events) >= 5)
    from_bank = [e for e in recorded if isinstance(e, PaymentRecorded) and e.source == "camt053"]
    assert len(from_bank) == 4 and len(recorded) == 5
    paid_by_rf = next(e for e in from_bank if e.invoice_id == f["by_rf"].invoice_id)
    assert (paid_by_rf.fully_paid, paid_by_rf.status, str(paid_by_rf.paid_on), paid_by_rf.reference) == \
        (True, "received", "2026-11-20", rf_reference("F-2026-101"))

    before = await _journal_size(tracker)
    again = (await client.post("/v1/payments/camt053", content=raw, headers=XML | auth(key))).json()
    assert (again["recorded"], again["duplicates"]) == (0, 4), "a re-import records nothing twice"
    assert await _journal_size(tracker) == before


async def test_a_statement_confirms_a_transmitted_payment(tracker, client, tenant_key, publish, flow, eventually):
    key = await tenant_key(tracker)
    f = (await _known(client, key, publish, flow, eventually, sent="F-2026-201"))["sent"]
    transmitted = await client.post(f"/v1/invoices/{f.invoice_id}/payments", headers=auth(key), json={
        "payment_id": "ERP-9", "amount": "1200.00", "paid_on": "2026-11-18", "status": "transmitted"})
    assert transmitted.json()["status"] == "PAIEMENT_TRANSMIS"
    raw = statement(entry("1200.00", ustrd="F-2026-201", bank_ref="C-1"))
    [line] = (await client.post("/v1/payments/camt053", content=raw, headers=XML | auth(key))).json()["items"]
    assert (line["outcome"], line["payment_id"], line["status"], line["code"]) == ("recorded", "ERP-9", "ENCAISSEE", 212)


    # The same statement again: its line is the one that confirmed ERP-9, neither unmatched nor a second payment.
    before = await _journal_size(tracker)
    again = (await client.post("/v1/payments/camt053", content=raw, headers=XML | auth(key))).json()
    assert (again["recorded"], again["duplicates"], again["unmatched"]) == (0, 1, 0)
    [line] = again["items"]
    assert (line["outcome"], line["payment_id"], line["number"], line["matched_by"], line["status"]) == \
        ("duplicate", "ERP-9", "F-2026-201", "number", "ENCAISSEE")
    assert (line["open_amount"], line["fully_paid"]) == ("0.00", True)
    assert "confirmed payment ERP-9" in line["reason"]
    assert await _journal_size(tracker) == before, "nothing recorded again"


async def test_bad_statements_change_nothing(tracker, client, tenant_key, publish, flow, eventually):
    key = await tenant_key(tracker)
    other = await tenant_key(tracker, tenant_id="initech", tenant_name="Initech")
    await _known(client, key, publish, flow, eventually, mine="F-2026-301")
    before = await _journal_size(tracker)
    raw = statement(entry("1200.00", ustrd="F-2026-301", bank_ref="D-1"))
    hostile = b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document>&x;</Document>'
    cases = [
        (await client.post("/v1/payments/camt053", content=raw, headers={"Content-Type": "application/json"} | auth(key)),
         415),
        (await client.post("/v1/payments/camt053", content=hostile, headers=XML | auth(key)), 422),
        (await client.post("/v1/payments/camt053", content=b"<Document><", headers=XML | auth(key)), 400),
        (await client.post("/v1/payments/camt053", content=raw, headers=XML), 401),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    not_camt = await client.post("/v1/payments/camt053", content=b"<Invoice/>", headers=XML | auth(key))
    assert not_camt.status_code == 422 and not_camt.json()["errors"][0]["pointer"] == "/Invoice"
    foreign = (await client.post("/v1/payments/camt053", content=raw, headers=XML | auth(other))).json()
    assert (foreign["recorded"], foreign["unmatched"]) == (0, 1), "another tenant's invoices are not matched"
    assert await _journal_size(tracker) == before


async def test_a_statement_paying_an_invoice_stops_its_dunning(run_service, tracker, client, tenant_key, publish, flow,
                                                              eventually):
    import httpx

    dunning = await run_service("dunning")
    key = await tenant_key(tracker)
    f = (await _known(client, key, publish, flow, eventually, dunned="F-2026-401"))["dunned"]
    async with httpx.AsyncClient(base_url=dunning.url, timeout=10) as dunning_client:
        async def plan():
            response = await dunning_client.get(f"/v1/invoices/{f.invoice_id}/reminders", headers=auth(key))
            return response.json() if response.status_code == 200 else None
        assert not (await eventually(plan, what="dunning's plan"))["status"].startswith("stopped")

        raw = statement(entry("1200.00", ref=rf_reference("F-2026-401"), bank_ref="E-1"))
        [line] = (await client.post("/v1/payments/camt053", content=raw, headers=XML | auth(key))).json()["items"]
        assert (line["outcome"], line["code"]) == ("recorded", 212)

        async def stopped():
            current = await plan()
            return current if current["status"].startswith("stopped") else None
        # The payment and its 212 status travel on two topics: either may reach dunning first and stop it.
        assert (await eventually(stopped, what="dunning stopped by the bank payment"))["status"] in (
            "stopped: paid in full", "stopped: cashed (212 ENCAISSEE)")

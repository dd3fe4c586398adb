"""Fixtures of the ingest tests: a running ingest (real PostgreSQL and broker), a tenant key,
a valid invoice body, and a reader of what ingest published."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from facturx import generate_from_binary
from lxml import etree
from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas
from sqlalchemy import func, select

from parcours_contracts import parse_event
from parcours_contracts.events import EventEnvelope
from parcours_runtime.outbox import outbox_table

ADMIN = {"Authorization": "Bearer dev-admin-token"}

def mapping_profile(seller: str = "ACME SAS") -> dict:
    """A CSV/XLSX column-mapping profile for exports with one row per invoice line (the tests' spreadsheets)."""
    return {"columns": {"no": "number", "issued": "issue_date", "due": "due_date", "customer": "buyer.customer_ref",
                        "name": "buyer.name", "item": "lines.description", "qty": "lines.quantity",
                        "price": "lines.unit_price", "vat": "lines.vat_rate", "net": "lines.line_total_excl_tax",
                        "total_net": "totals.total_excl_tax", "total_vat": "totals.total_tax",
                        "total": "totals.total_incl_tax"},
            "defaults": {"currency": "EUR", "seller.name": seller}}


VALID_INVOICE = {
    "number": "F-2026-0001",
    "issue_date": "2026-11-02",
    "due_date": "2026-12-02",
    "currency": "EUR",
    # valid check digits: SIREN/SIRET pass the Luhn check, the VAT key is (12 + 3 × (SIREN mod 97)) mod 97
    "seller": {"name": "ACME SAS", "siren": "732829320", "siret": "73282932000074", "vat_id": "FR44732829320"},
    "buyer": {"customer_ref": "CUST-42", "name": "Dupont SARL", "siren": "552100554"},
    "lines": [
        # 3 × 33.335 = 100.005 → 100.01 (rounded half up)
        {"description": "Consulting", "quantity": "3", "unit_price": "33.335", "vat_rate": 20,
         "line_total_excl_tax": "100.01"},
        # a JSON number read as Decimal, never float: 0.1 × 3 is exactly 0.30
        {"description": "Stamps", "quantity": 0.1, "unit_price": 3, "vat_rate": 5.5, "line_total_excl_tax": 0.30},
        {"description": "Envelopes", "quantity": 1, "unit_price": "0.30", "vat_rate": "5.5", "line_total_excl_tax": "0.30"},
        {"description": "Travel", "quantity": 1, "unit_price": "19.99", "vat_rate": "20.0",
         "line_total_excl_tax": "19.99"},
    ],
    # VAT per rate on the summed base: 20 % of 120.00 = 24.00, 5.5 % of 0.60 = 0.033 → 0.03
    # (rounding line by line would give 20.00 + 0.02 + 0.02 + 4.00 = 24.04)
    "totals": {"total_excl_tax": "120.60", "total_tax": "24.03", "total_incl_tax": "144.63"},
}


@pytest.fixture
def make_invoice() -> Callable[..., dict]:
    """Factory: a valid invoice body (a fresh number unless given), optionally with the test PDF."""

    def make(number: str | None = None, *, with_pdf: bool = False) -> dict:
        body = copy.deepcopy(VALID_INVOICE)
        body["number"] = number or f"F-{uuid.uuid4().hex[:10]}"
        if with_pdf:
            body["pdf"] = base64.b64encode(PDF).decode()
        return body

    return make


@pytest.fixture
async def ingest(run_service):
    return await run_service("ingest")


@pytest.fixture
async def client(ingest):
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as http:
        yield http


@pytest.fixture
async def acme(ingest, tenant_key) -> dict[str, str]:
    """Authorization headers of tenant "acme"."""
    return {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='acme', tenant_name='ACME SAS')}"}


@pytest.fixture
def sample_pdf() -> bytes:
    return PDF


@pytest.fixture
def count_rows() -> Callable:
    """Counter: rows of a table (or model) in a host's database."""

    async def count(host, table_or_model) -> int:
        async with host.ctx.sessions() as session:
            return (await session.execute(select(func.count()).select_from(table_or_model))).scalar_one()

    return count


@pytest.fixture
def outbox_size(ingest, count_rows) -> Callable:
    """Events committed but not yet relayed (the relay empties it within milliseconds)."""
    return lambda: count_rows(ingest, outbox_table)


@pytest.fixture
def read_events(kafka) -> Callable:
    """Reader: every event on `topic` once `until(events)` holds (all partitions, to their end)."""

    async def read(topic: str, *, until: Callable[[list[EventEnvelope]], bool], timeout: float = 20.0) -> list[EventEnvelope]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                await consumer.topics()
                partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            events: list[EventEnvelope] = []
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                events += [parse_event(record.value) for records in batch.values() for record in records]
                if until(events):
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"condition not met on {topic}; saw {len(events)} event(s)")
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:  # drain the rest, so that "nothing else" assertions see everything
                while await consumer.position(tp) < ends[tp]:
                    records = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
                    events += [parse_event(record.value) for record in records]
            return events
        finally:
            await consumer.stop()

    return read


# --- Invoice documents built from a JSON invoice body: UBL 2.1, CII D16B, Factur-X PDF ---------

UBL_NS = {"inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
          "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
          "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
          "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
CII_NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
          "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
          "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
          "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"}


def _el(parent, ns: dict, qname: str, text=None, **attrs):
    prefix, local = qname.split(":")
    element = etree.SubElement(parent, f"{{{ns[prefix]}}}{local}", {k: str(v) for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def _vat_bases(body: dict) -> dict[Decimal, tuple[Decimal, Decimal]]:
    """(base, tax) per VAT rate, as the arithmetic computes them."""
    bases: dict[Decimal, Decimal] = {}
    for line in body["lines"]:
        rate = Decimal(str(line["vat_rate"]))
        bases[rate] = bases.get(rate, Decimal(0)) + Decimal(str(line["line_total_excl_tax"]))
    for item in body.get("allowances_charges", []):
        sign = 1 if item.get("charge") else -1
        rate = Decimal(str(item["vat_rate"]))
        bases[rate] = bases.get(rate, Decimal(0)) + sign * Decimal(str(item["amount"]))
    return {rate: (base, (base * rate / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
            for rate, base in bases.items()}


def ubl_document(body: dict) -> bytes:
    """A UBL 2.1 Invoice (CreditNote when type_code is 381) carrying `body`, valid against the UBL XSD."""
    credit = body.get("type_code") == "381"
    ns = dict(UBL_NS)
    root_ns = ns["cn"] if credit else ns["inv"]
    root = etree.Element(f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
                         nsmap={None: root_ns, "cac": ns["cac"], "cbc": ns["cbc"]})
    cur = body["currency"]
    e = lambda parent, q, text=None, **a: _el(parent, ns, q, text, **a)  # noqa: E731
    e(root, "cbc:CustomizationID", "urn:cen.eu:en16931:2017")
    e(root, "cbc:ID", body["number"])
    e(root, "cbc:IssueDate", body["issue_date"])
    if not credit and body.get("due_date"):
        e(root, "cbc:DueDate", body["due_date"])
    e(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", body.get("type_code", "380"))
    e(root, "cbc:DocumentCurrencyCode", cur)
    for role, tag in (("seller", "cac:AccountingSupplierParty"), ("buyer", "cac:AccountingCustomerParty")):
        party_data = body[role]
        party = e(e(root, tag), "cac:Party")
        if role == "buyer" and party_data.get("customer_ref"):
            e(e(party, "cac:PartyIdentification"), "cbc:ID", party_data["customer_ref"])
        if party_data.get("siret"):
            e(e(party, "cac:PartyIdentification"), "cbc:ID", party_data["siret"], schemeID="0009")
        address = e(party, "cac:PostalAddress")
        e(e(address, "cac:Country"), "cbc:IdentificationCode", "FR")
        if party_data.get("vat_id"):
            scheme = e(party, "cac:PartyTaxScheme")
            e(scheme, "cbc:CompanyID", party_data["vat_id"])
            e(e(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
        legal = e(party, "cac:PartyLegalEntity")
        e(legal, "cbc:RegistrationName", party_data["name"])
        if party_data.get("siren"):
            e(legal, "cbc:CompanyID", party_data["siren"], schemeID="0002")
    if credit and body.get("due_date"):
        means = e(root, "cac:PaymentMeans")
        e(means, "cbc:PaymentMeansCode", "30")
        e(means, "cbc:PaymentDueDate", body["due_date"])
    for item in body.get("allowances_charges", []):
        ac = e(root, "cac:AllowanceCharge")
        e(ac, "cbc:ChargeIndicator", "true" if item.get("charge") else "false")
        e(ac, "cbc:AllowanceChargeReason", item.get("reason", "Discount"))
        e(ac, "cbc:Amount", item["amount"], currencyID=cur)
        category = e(ac, "cac:TaxCategory")
        e(category, "cbc:ID", "S")
        e(category, "cbc:Percent", item["vat_rate"])
        e(e(category, "cac:TaxScheme"), "cbc:ID", "VAT")
    totals = body["totals"]
    tax_total = e(root, "cac:TaxTotal")
    e(tax_total, "cbc:TaxAmount", totals["total_tax"], currencyID=cur)
    for rate, (base, tax) in _vat_bases(body).items():
        subtotal = e(tax_total, "cac:TaxSubtotal")
        e(subtotal, "cbc:TaxableAmount", base, currencyID=cur)
        e(subtotal, "cbc:TaxAmount", tax, currencyID=cur)
        category = e(subtotal, "cac:TaxCategory")
        e(category, "cbc:ID", "S" if rate else "Z")
        e(category, "cbc:Percent", rate)
        e(e(category, "cac:TaxScheme"), "cbc:ID", "VAT")
    monetary = e(root, "cac:LegalMonetaryTotal")
    lines_sum = sum((Decimal(str(line["line_total_excl_tax"])) for line in body["lines"]), Decimal(0))
    e(monetary, "cbc:LineExtensionAmount", lines_sum, currencyID=cur)
    e(monetary, "cbc:TaxExclusiveAmount", totals["total_excl_tax"], currencyID=cur)
    e(monetary, "cbc:TaxInclusiveAmount", totals["total_incl_tax"], currencyID=cur)
    e(monetary, "cbc:PayableAmount", totals["total_incl_tax"], currencyID=cur)
    for number, line in enumerate(body["lines"], 1):
        invoice_line = e(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
        e(invoice_line, "cbc:ID", number)
        e(invoice_line, "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity", line["quantity"], unitCode="C62")
        e(invoice_line, "cbc:LineExtensionAmount", line["line_total_excl_tax"], currencyID=cur)
        item = e(invoice_line, "cac:Item")
        e(item, "cbc:Name", line["description"])
        category = e(item, "cac:ClassifiedTaxCategory")
        e(category, "cbc:ID", "S")
        e(category, "cbc:Percent", line["vat_rate"])
        e(e(category, "cac:TaxScheme"), "cbc:ID", "VAT")
        e(e(invoice_line, "cac:Price"), "cbc:PriceAmount", line["unit_price"], currencyID=cur)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def cii_document(body: dict) -> bytes:
    """A CII D16B CrossIndustryInvoice (Factur-X EN 16931 profile) carrying `body`, valid against its XSD."""
    ns = CII_NS
    e = lambda parent, q, text=None, **a: _el(parent, ns, q, text, **a)  # noqa: E731
    root = etree.Element(f"{{{ns['rsm']}}}CrossIndustryInvoice", nsmap=ns)
    e(e(e(root, "rsm:ExchangedDocumentContext"), "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID",
      "urn:cen.eu:en16931:2017")
    document = e(root, "rsm:ExchangedDocument")
    e(document, "ram:ID", body["number"])
    e(document, "ram:TypeCode", body.get("type_code", "380"))
    e(e(document, "ram:IssueDateTime"), "udt:DateTimeString", body["issue_date"].replace("-", ""), format="102")
    transaction = e(root, "rsm:SupplyChainTradeTransaction")
    cur = body["currency"]
    for number, line in enumerate(body["lines"], 1):
        item = e(transaction, "ram:IncludedSupplyChainTradeLineItem")
        e(e(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", number)
        e(e(item, "ram:SpecifiedTradeProduct"), "ram:Name", line["description"])
        e(e(e(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice"), "ram:ChargeAmount",
          line["unit_price"])
        e(e(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", line["quantity"], unitCode="C62")
        settlement = e(item, "ram:SpecifiedLineTradeSettlement")
        tax = e(settlement, "ram:ApplicableTradeTax")
        e(tax, "ram:TypeCode", "VAT")
        e(tax, "ram:CategoryCode", "S")
        e(tax, "ram:RateApplicablePercent", line["vat_rate"])
        e(e(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"), "ram:LineTotalAmount",
          line["line_total_excl_tax"])
    agreement = e(transaction, "ram:ApplicableHeaderTradeAgreement")
    for role, tag in (("seller", "ram:SellerTradeParty"), ("buyer", "ram:BuyerTradeParty")):
        party_data = body[role]
        party = e(agreement, tag)
        if role == "buyer" and party_data.get("customer_ref"):
            e(party, "ram:ID", party_data["customer_ref"])
        if party_data.get("siret"):
            e(party, "ram:GlobalID", party_data["siret"], schemeID="0009")
        e(party, "ram:Name", party_data["name"])
        if party_data.get("siren"):
            e(e(party, "ram:SpecifiedLegalOrganization"), "ram:ID", party_data["siren"], schemeID="0002")
        e(e(party, "ram:PostalTradeAddress"), "ram:CountryID", "FR")
        if party_data.get("vat_id"):
            e(e(party, "ram:SpecifiedTaxRegistration"), "ram:ID", party_data["vat_id"], schemeID="VA")
    e(transaction, "ram:ApplicableHeaderTradeDelivery")
    settlement = e(transaction, "ram:ApplicableHeaderTradeSettlement")
    e(settlement, "ram:InvoiceCurrencyCode", cur)
    for rate, (base, tax_amount) in _vat_bases(body).items():
        tax = e(settlement, "ram:ApplicableTradeTax")
        e(tax, "ram:CalculatedAmount", tax_amount)
        e(tax, "ram:TypeCode", "VAT")
        e(tax, "ram:BasisAmount", base)
        e(tax, "ram:CategoryCode", "S" if rate else "Z")
        e(tax, "ram:RateApplicablePercent", rate)
    for item in body.get("allowances_charges", []):
        ac = e(settlement, "ram:SpecifiedTradeAllowanceCharge")
        e(e(ac, "ram:ChargeIndicator"), "udt:Indicator", "true" if item.get("charge") else "false")
        e(ac, "ram:ActualAmount", item["amount"])
        e(ac, "ram:Reason", item.get("reason", "Discount"))
        tax = e(ac, "ram:CategoryTradeTax")
        e(tax, "ram:TypeCode", "VAT")
        e(tax, "ram:CategoryCode", "S")
        e(tax, "ram:RateApplicablePercent", item["vat_rate"])
    if body.get("due_date"):
        e(e(e(settlement, "ram:SpecifiedTradePaymentTerms"), "ram:DueDateDateTime"), "udt:DateTimeString",
          body["due_date"].replace("-", ""), format="102")
    totals = body["totals"]
    summation = e(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    lines_sum = sum((Decimal(str(line["line_total_excl_tax"])) for line in body["lines"]), Decimal(0))
    e(summation, "ram:LineTotalAmount", lines_sum)
    e(summation, "ram:TaxBasisTotalAmount", totals["total_excl_tax"])
    e(summation, "ram:TaxTotalAmount", totals["total_tax"], currencyID=cur)
    e(summation, "ram:GrandTotalAmount", totals["total_incl_tax"])
    e(summation, "ram:DuePayableAmount", totals["total_incl_tax"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def blank_pdf(pages: int = 1) -> bytes:
    """A minimal valid PDF of blank A4 pages."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def facturx_pdf(xml: bytes) -> bytes:
    """A Factur-X PDF: a blank page with `xml` embedded by the factur-x library."""
    return generate_from_binary(blank_pdf(), xml, check_xsd=False)


def text_pdf(*pages: str) -> bytes:
    """A PDF with one line of text on each page (pypdf extracts it back)."""
    out = io.BytesIO()
    document = canvas.Canvas(out)
    for text in pages:
        document.drawString(72, 720, text)
        document.showPage()
    document.save()
    return out.getvalue()


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text().strip() for page in PdfReader(io.BytesIO(pdf)).pages]


PDF = blank_pdf()  # the PDF make_invoice(with_pdf=True) attaches


@pytest.fixture
def documents() -> SimpleNamespace:
    """The document builders: ubl(body), cii(body), facturx(xml), blank_pdf(pages), text_pdf(*pages), and
    page_texts(pdf)."""
    return SimpleNamespace(ubl=ubl_document, cii=cii_document, facturx=facturx_pdf, blank_pdf=blank_pdf,
                           text_pdf=text_pdf, page_texts=page_texts)


@pytest.fixture
def finished_batch(eventually) -> Callable:
    """`await finished_batch(client, headers, batch_id, **params)`: GET /v1/batches/{id} once it is done or failed."""

    async def wait(client: httpx.AsyncClient, headers: dict, batch_id: str, **params) -> dict:
        async def done():
            body = (await client.get(f"/v1/batches/{batch_id}", headers=headers, params=params)).json()
            return body if body["status"] in ("done", "failed") else None
        return await eventually(done, timeout=60, what=f"batch {batch_id} finished")

    return wait

"""Our invoice as UBL 2.1 (Invoice, or CreditNote for type 381), EN 16931 core, for the channels that
want UBL. Elements in the order the UBL XSD wants; the French legal mentions as #PMT#/#PMD#/#AAB# notes.
Pure: invoice in, bytes out."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from parcours_ingest.domain.cii_out import EN16931, electronic_address
from parcours_ingest.domain.invoice import (
    DEFAULT_BUSINESS_PROCESS, AllowanceCharge, Buyer, InvoiceContent, PostalAddress, Seller,
)
from parcours_ingest.domain.legal import LegalMentions
from parcours_ingest.domain.vat_summary import line_categories, vat_entries

INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_NS = {"cac": CAC, "cbc": CBC}


def _sub(parent: etree._Element, qname: str, text: object = None, **attributes: str) -> etree._Element:
    prefix, local = qname.split(":")
    element = etree.SubElement(parent, f"{{{_NS[prefix]}}}{local}", attributes)
    if text is not None:
        element.text = str(text)
    return element


def _amount(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def ubl_invoice(invoice: InvoiceContent, *, mentions: LegalMentions | None = None) -> bytes:
    """The UBL 2.1 Invoice (or CreditNote) of `invoice` (UTF-8, with XML declaration)."""
    credit = invoice.is_credit_note
    namespace = CREDIT_NOTE if credit else INVOICE
    root = etree.Element(f"{{{namespace}}}{'CreditNote' if credit else 'Invoice'}",
                         nsmap={None: namespace, "cac": CAC, "cbc": CBC})
    cur = invoice.currency
    _sub(root, "cbc:CustomizationID", EN16931)
    _sub(root, "cbc:ProfileID", invoice.business_process or DEFAULT_BUSINESS_PROCESS)  # BT-23
    _sub(root, "cbc:ID", invoice.number)
    _sub(root, "cbc:IssueDate", invoice.issue_date.isoformat())
    if not credit:
        _sub(root, "cbc:DueDate", invoice.due_date.isoformat())
    _sub(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", invoice.type_code)
    for subject, text in (mentions.notes() if mentions else ()):
        _sub(root, "cbc:Note", f"#{subject}#{text}")
    _sub(root, "cbc:DocumentCurrencyCode", cur)
    _party(_sub(root, "cac:AccountingSupplierParty"), invoice.seller)
    _party(_sub(root, "cac:AccountingCustomerParty"), invoice.buyer)
    if credit:  # a credit note has no DueDate of its own: BT-9 goes in the payment means
        means = _sub(root, "cac:PaymentMeans")
        _sub(means, "cbc:PaymentMeansCode", "1")
        _sub(means, "cbc:PaymentDueDate", invoice.due_date.isoformat())
    if invoice.payment_terms:
        _sub(_sub(root, "cac:PaymentTerms"), "cbc:Note", invoice.payment_terms)
    categories = line_categories(invoice)
    for item in invoice.allowances_charges:
        _allowance_charge(root, item, cur, category=categories.get(item.vat_rate or Decimal(0), "S"))

    tax_total = _sub(root, "cac:TaxTotal")
    _sub(tax_total, "cbc:TaxAmount", _amount(invoice.totals.total_tax), currencyID=cur)
    for entry in vat_entries(invoice):
        subtotal = _sub(tax_total, "cac:TaxSubtotal")
        _sub(subtotal, "cbc:TaxableAmount", _amount(entry.base), currencyID=cur)
        _sub(subtotal, "cbc:TaxAmount", _amount(entry.tax), currencyID=cur)
        _tax_category(subtotal, "cac:TaxCategory", entry.rate, entry.category, entry.exemption_reason_code)

    totals = invoice.totals
    lines_total = sum((line.line_total_excl_tax for line in invoice.lines), Decimal(0))
    monetary = _sub(root, "cac:LegalMonetaryTotal")
    _sub(monetary, "cbc:LineExtensionAmount", _amount(lines_total), currencyID=cur)
    _sub(monetary, "cbc:TaxExclusiveAmount", _amount(totals.total_excl_tax), currencyID=cur)
    _sub(monetary, "cbc:TaxInclusiveAmount", _amount(totals.total_incl_tax), currencyID=cur)
    if invoice.allowances_charges:
        _sub(monetary, "cbc:AllowanceTotalAmount",
             _amount(sum((c.amount for c in invoice.allowances_charges if not c.charge), Decimal(0))), currencyID=cur)
        _sub(monetary, "cbc:ChargeTotalAmount",
             _amount(sum((c.amount for c in invoice.allowances_charges if c.charge), Decimal(0))), currencyID=cur)
    if totals.prepaid_amount is not None:
        _sub(monetary, "cbc:PrepaidAmount", _amount(totals.prepaid_amount), currencyID=cur)
    _sub(monetary, "cbc:PayableAmount", _amount(totals.total_incl_tax - (totals.prepaid_amount or Decimal(0))),
         currencyID=cur)

    for number, line in enumerate(invoice.lines, 1):
        element = _sub(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
        _sub(element, "cbc:ID", number)
        _sub(element, "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity", format(line.quantity, "f"),
             unitCode="C62")
        _sub(element, "cbc:LineExtensionAmount", _amount(line.line_total_excl_tax), currencyID=cur)
        for item in line.allowances_charges:
            _allowance_charge(element, item, cur)
        product = _sub(element, "cac:Item")
        _sub(product, "cbc:Name", line.description)
        _tax_category(product, "cac:ClassifiedTaxCategory", line.vat_rate, categories[line.vat_rate], None)
        price = _sub(element, "cac:Price")
        _sub(price, "cbc:PriceAmount", format(line.unit_price, "f"), currencyID=cur)
        if line.price_base_quantity is not None:
            _sub(price, "cbc:BaseQuantity", format(line.price_base_quantity, "f"), unitCode="C62")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _party(parent: etree._Element, party: Seller | Buyer) -> None:
    element = _sub(parent, "cac:Party")
    if (endpoint := electronic_address(party)) is not None:  # BT-34 / BT-49
        _sub(element, "cbc:EndpointID", endpoint.value, schemeID=endpoint.scheme)
    if isinstance(party, Buyer):
        _sub(_sub(element, "cac:PartyIdentification"), "cbc:ID", party.customer_ref)
    if party.siret:
        _sub(_sub(element, "cac:PartyIdentification"), "cbc:ID", party.siret, schemeID="0009")
    address = party.address or PostalAddress()
    postal = _sub(element, "cac:PostalAddress")
    for qname, value in (("cbc:StreetName", address.line1), ("cbc:AdditionalStreetName", address.line2),
                         ("cbc:CityName", address.city), ("cbc:PostalZone", address.postcode)):
        if value:
            _sub(postal, qname, value)
    _sub(_sub(postal, "cac:Country"), "cbc:IdentificationCode", address.country_code)
    if party.vat_id:
        scheme = _sub(element, "cac:PartyTaxScheme")
        _sub(scheme, "cbc:CompanyID", party.vat_id)
        _sub(_sub(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
    legal = _sub(element, "cac:PartyLegalEntity")
    _sub(legal, "cbc:RegistrationName", party.name)
    if party.siren:
        _sub(legal, "cbc:CompanyID", party.siren, schemeID="0002")


def _tax_category(parent: etree._Element, qname: str, rate: Decimal, category: str, reason_code: str | None) -> None:
    element = _sub(parent, qname)
    _sub(element, "cbc:ID", category)
    if category != "O":
        _sub(element, "cbc:Percent", format(rate, "f"))
    if reason_code:
        _sub(element, "cbc:TaxExemptionReasonCode", reason_code)
    _sub(_sub(element, "cac:TaxScheme"), "cbc:ID", "VAT")


def _allowance_charge(parent: etree._Element, item: AllowanceCharge, currency: str, *,
                      category: str | None = None) -> None:
    element = _sub(parent, "cac:AllowanceCharge")
    _sub(element, "cbc:ChargeIndicator", "true" if item.charge else "false")
    if item.reason_code:
        _sub(element, "cbc:AllowanceChargeReasonCode", item.reason_code)
    _sub(element, "cbc:AllowanceChargeReason", item.reason or ("Frais" if item.charge else "Remise"))
    _sub(element, "cbc:Amount", _amount(item.amount), currencyID=currency)
    if category is not None:
        _tax_category(element, "cac:TaxCategory", item.vat_rate or Decimal(0), category, None)

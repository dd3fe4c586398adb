"""Our invoice as UN/CEFACT CII D16B, Factur-X profile EN 16931 (the XML a Factur-X PDF embeds).
Elements in the order the XSD wants; amounts as the arithmetic computed them; the French legal
mentions (penalties, recovery indemnity) as notes. Pure: invoice in, bytes out."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from parcours_ingest.domain.invoice import (
    DEFAULT_BUSINESS_PROCESS, AllowanceCharge, Buyer, ElectronicAddress, InvoiceContent, PostalAddress, Seller,
)
from parcours_ingest.domain.legal import LegalMentions
from parcours_ingest.domain.vat_summary import line_categories, vat_entries

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
_NS = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
EN16931 = "urn:cen.eu:en16931:2017"


def _sub(parent: etree._Element, qname: str, text: object = None, **attributes: str) -> etree._Element:
    prefix, local = qname.split(":")
    element = etree.SubElement(parent, f"{{{_NS[prefix]}}}{local}", attributes)
    if text is not None:
        element.text = str(text)
    return element


def _date(parent: etree._Element, qname: str, value) -> None:
    _sub(_sub(parent, qname), "udt:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _amount(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def cii_invoice(invoice: InvoiceContent, *, mentions: LegalMentions | None = None) -> bytes:
    """The CrossIndustryInvoice of `invoice` (UTF-8, with XML declaration)."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=_NS)
    context = _sub(root, "rsm:ExchangedDocumentContext")
    _sub(_sub(context, "ram:BusinessProcessSpecifiedDocumentContextParameter"), "ram:ID",
         invoice.business_process or DEFAULT_BUSINESS_PROCESS)  # BT-23: the French CTC rules want it (BR-FR-08)
    _sub(_sub(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", EN16931)
    document = _sub(root, "rsm:ExchangedDocument")
    _sub(document, "ram:ID", invoice.number)
    _sub(document, "ram:TypeCode", invoice.type_code)
    _date(document, "ram:IssueDateTime", invoice.issue_date)
    for subject, text in (mentions.notes() if mentions else ()):
        note = _sub(document, "ram:IncludedNote")
        _sub(note, "ram:Content", text)
        _sub(note, "ram:SubjectCode", subject)

    transaction = _sub(root, "rsm:SupplyChainTradeTransaction")
    categories = line_categories(invoice)
    for number, line in enumerate(invoice.lines, 1):
        item = _sub(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _sub(_sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", number)
        _sub(_sub(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)
        price = _sub(_sub(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
        _sub(price, "ram:ChargeAmount", format(line.unit_price, "f"))
        if line.price_base_quantity is not None:
            _sub(price, "ram:BasisQuantity", format(line.price_base_quantity, "f"), unitCode="C62")
        _sub(_sub(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", format(line.quantity, "f"),
             unitCode="C62")
        settlement = _sub(item, "ram:SpecifiedLineTradeSettlement")
        _tax_category(settlement, "ram:ApplicableTradeTax", line.vat_rate, categories[line.vat_rate])
        for charge in line.allowances_charges:
            _allowance_charge(settlement, charge)
        _sub(_sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"), "ram:LineTotalAmount",
             _amount(line.line_total_excl_tax))

    agreement = _sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", invoice.seller)
    _party(agreement, "ram:BuyerTradeParty", invoice.buyer)
    _sub(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = _sub(transaction, "ram:ApplicableHeaderTradeSettlement")
    _sub(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    for entry in vat_entries(invoice):
        tax = _sub(settlement, "ram:ApplicableTradeTax")
        _sub(tax, "ram:CalculatedAmount", _amount(entry.tax))
        _sub(tax, "ram:TypeCode", "VAT")
        _sub(tax, "ram:BasisAmount", _amount(entry.base))
        _sub(tax, "ram:CategoryCode", entry.category)
        if entry.exemption_reason_code:
            _sub(tax, "ram:ExemptionReasonCode", entry.exemption_reason_code)
        if entry.category != "O":
            _sub(tax, "ram:RateApplicablePercent", format(entry.rate, "f"))
    for charge in invoice.allowances_charges:
        _allowance_charge(settlement, charge, category=categories.get(charge.vat_rate or Decimal(0), "S"))
    terms = _sub(settlement, "ram:SpecifiedTradePaymentTerms")
    if invoice.payment_terms:
        _sub(terms, "ram:Description", invoice.payment_terms)
    _date(terms, "ram:DueDateDateTime", invoice.due_date)

    totals = invoice.totals
    lines_total = sum((line.line_total_excl_tax for line in invoice.lines), Decimal(0))
    charges = sum((c.amount for c in invoice.allowances_charges if c.charge), Decimal(0))
    allowances = sum((c.amount for c in invoice.allowances_charges if not c.charge), Decimal(0))
    summation = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(summation, "ram:LineTotalAmount", _amount(lines_total))
    if invoice.allowances_charges:
        _sub(summation, "ram:ChargeTotalAmount", _amount(charges))
        _sub(summation, "ram:AllowanceTotalAmount", _amount(allowances))
    _sub(summation, "ram:TaxBasisTotalAmount", _amount(totals.total_excl_tax))
    _sub(summation, "ram:TaxTotalAmount", _amount(totals.total_tax), currencyID=invoice.currency)
    _sub(summation, "ram:GrandTotalAmount", _amount(totals.total_incl_tax))
    if totals.prepaid_amount is not None:
        _sub(summation, "ram:TotalPrepaidAmount", _amount(totals.prepaid_amount))
    _sub(summation, "ram:DuePayableAmount", _amount(totals.total_incl_tax - (totals.prepaid_amount or Decimal(0))))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _party(parent: etree._Element, qname: str, party: Seller | Buyer) -> None:
    element = _sub(parent, qname)
    if isinstance(party, Buyer):
        _sub(element, "ram:ID", party.customer_ref)
    if party.siret:
        _sub(element, "ram:GlobalID", party.siret, schemeID="0009")
    _sub(element, "ram:Name", party.name)
    if party.siren:
        _sub(_sub(element, "ram:SpecifiedLegalOrganization"), "ram:ID", party.siren, schemeID="0002")
    address = party.address or PostalAddress()  # Parcours's tenants invoice from France: FR unless told
    postal = _sub(element, "ram:PostalTradeAddress")
    for qname_, value in (("ram:PostcodeCode", address.postcode), ("ram:LineOne", address.line1),
                          ("ram:LineTwo", address.line2), ("ram:CityName", address.city),
                          ("ram:CountryID", address.country_code)):
        if value:
            _sub(postal, qname_, value)
    if (endpoint := electronic_address(party)) is not None:  # BT-34 / BT-49 (BR-FR-12, BR-FR-13)
        _sub(_sub(element, "ram:URIUniversalCommunication"), "ram:URIID", endpoint.value, schemeID=endpoint.scheme)
    if party.vat_id:
        _sub(_sub(element, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")


def electronic_address(party: Seller | Buyer) -> ElectronicAddress | None:
    """The party's electronic address; else its SIREN in the French directory's scheme (every company's first
    address there), else none."""
    if party.electronic_address is not None:
        return party.electronic_address
    siren = party.siren or (party.siret[:9] if party.siret else None)
    return ElectronicAddress(scheme="0225", value=siren) if siren else None


def _tax_category(parent: etree._Element, qname: str, rate: Decimal, category: str) -> None:
    tax = _sub(parent, qname)
    _sub(tax, "ram:TypeCode", "VAT")
    _sub(tax, "ram:CategoryCode", category)
    if category != "O":
        _sub(tax, "ram:RateApplicablePercent", format(rate, "f"))


def _allowance_charge(parent: etree._Element, item: AllowanceCharge, *, category: str | None = None) -> None:
    element = _sub(parent, "ram:SpecifiedTradeAllowanceCharge")
    _sub(_sub(element, "ram:ChargeIndicator"), "udt:Indicator", "true" if item.charge else "false")
    _sub(element, "ram:ActualAmount", _amount(item.amount))
    if item.reason_code:
        _sub(element, "ram:ReasonCode", item.reason_code)
    # BR-33/BR-38: a reason or its code is required; ours says what it is when the ERP did not
    _sub(element, "ram:Reason", item.reason or ("Frais" if item.charge else "Remise"))
    if category is not None:  # document level: its own VAT category and rate (line level uses the line's)
        _tax_category(element, "ram:CategoryTradeTax", item.vat_rate or Decimal(0), category)

"""UBL 2.1 Invoice and CreditNote → the invoice payload (EN 16931 UBL binding).

customer_ref is BT-46 Buyer identifier (cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID):
the seller's own key of its customer, which is what the router's directory is keyed on. BT-10
Buyer reference is the buyer's routing reference and is deliberately not used as a fallback: a
wrong guess would deliver the invoice to another customer."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from parcours_ingest.domain.documents.reader import Extraction, Loc, indicator
from parcours_ingest.domain.documents.xml import UBL_CREDIT_NOTE

_NINE_DIGITS = re.compile(r"^[0-9]{9}$")


def read_ubl(root: etree._Element) -> Extraction:
    """The payload of a UBL Invoice or CreditNote, with the XPath of each value."""
    x = Extraction(root)
    credit = etree.QName(root).namespace == UBL_CREDIT_NOTE
    p = x.payload
    x.put(p, "number", x.text(root, "cbc:ID", ("number",), "BT-1 Invoice number"))
    x.put(p, "type_code", x.text(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", ("type_code",),
                                 "BT-3 Invoice type code", required=False) or ("381" if credit else "380"))
    x.put(p, "issue_date", x.text(root, "cbc:IssueDate", ("issue_date",), "BT-2 Invoice issue date"))
    x.put(p, "business_process", x.business_process(root, "cbc:ProfileID"))
    due_xpath = "cac:PaymentMeans/cbc:PaymentDueDate" if credit else "cbc:DueDate"
    # A credit note is never dunned: without a due date, it is due when issued.
    x.put(p, "due_date", x.text(root, due_xpath, ("due_date",), "BT-9 Payment due date", required=not credit)
          or (p.get("issue_date") if credit else None))
    currency = x.text(root, "cbc:DocumentCurrencyCode", ("currency",), "BT-5 Invoice currency code")
    x.put(p, "currency", currency)
    x.put(p, "payment_terms", x.text(root, "cac:PaymentTerms/cbc:Note", ("payment_terms",), "BT-20 Payment terms",
                                     required=False))

    seller = x.require(root, "cac:AccountingSupplierParty/cac:Party", ("seller",), "BG-4 Seller")
    p["seller"] = _party(x, seller, ("seller",), names=("BT-27", "BT-29", "BT-30", "BT-31"))
    buyer = x.require(root, "cac:AccountingCustomerParty/cac:Party", ("buyer",), "BG-7 Buyer")
    p["buyer"] = _party(x, buyer, ("buyer",), names=("BT-44", "BT-46", "BT-47", "BT-48"))
    if buyer is not None:
        x.put(p["buyer"], "customer_ref", x.text(buyer, "cac:PartyIdentification/cbc:ID", ("buyer", "customer_ref"),
                                                 "BT-46 Buyer identifier (our customer_ref)"))

    line_tag = "cac:CreditNoteLine" if credit else "cac:InvoiceLine"
    lines = x.find_all(root, line_tag)
    x.at(("lines",), root, line_tag)
    if not lines:
        x.require(root, line_tag, ("lines",), "BG-25 Invoice line")
    p["lines"] = [_line(x, line, ("lines", i), credit) for i, line in enumerate(lines)]
    p["allowances_charges"] = [_allowance_charge(x, item, ("allowances_charges", i), document_level=True)
                               for i, item in enumerate(x.find_all(root, "cac:AllowanceCharge"))]

    tax_total = _tax_total(x, root, currency)
    totals: dict[str, Any] = {}
    x.at(("totals",), root, "cac:LegalMonetaryTotal")
    x.put(totals, "total_tax", x.text(tax_total if tax_total is not None else root,
                                      "cbc:TaxAmount" if tax_total is not None else "cac:TaxTotal/cbc:TaxAmount",
                                      ("totals", "total_tax"), "BT-110 Invoice total VAT amount"))
    monetary = x.require(root, "cac:LegalMonetaryTotal", ("totals",), "BG-22 Document totals")
    for key, xpath, term, required in (
            ("lines_total", "cbc:LineExtensionAmount", "BT-106 Sum of invoice line net amount", False),
            ("total_excl_tax", "cbc:TaxExclusiveAmount", "BT-109 Invoice total amount without VAT", True),
            ("total_incl_tax", "cbc:TaxInclusiveAmount", "BT-112 Invoice total amount with VAT", True),
            ("allowance_total", "cbc:AllowanceTotalAmount", "BT-107", False),
            ("charge_total", "cbc:ChargeTotalAmount", "BT-108", False),
            ("prepaid_amount", "cbc:PrepaidAmount", "BT-113", False),
            ("amount_due", "cbc:PayableAmount", "BT-115 Amount due for payment", False)):
        x.put(totals, key, x.text(monetary, xpath, ("totals", key), term, required=required))
    p["totals"] = totals
    if tax_total is not None:
        x.at(("vat_breakdown",), tax_total)
        p["vat_breakdown"] = [_vat_entry(x, entry, ("vat_breakdown", i))
                              for i, entry in enumerate(x.find_all(tax_total, "cac:TaxSubtotal"))]
    x.raise_if_missing()
    return x


def _party(x: Extraction, party: etree._Element | None, loc: Loc, *, names: tuple[str, str, str, str]) -> dict:
    name_term, id_term, legal_term, vat_term = names
    out: dict[str, Any] = {}
    if party is None:
        return out
    x.at(loc, party)
    name = x.text(party, "cac:PartyLegalEntity/cbc:RegistrationName", loc + ("name",), f"{name_term} name",
                  required=False) or x.text(party, "cac:PartyName/cbc:Name", loc + ("name",), f"{name_term} name")
    x.put(out, "name", name)
    x.put(out, "siret", x.text(party, "cac:PartyIdentification/cbc:ID[@schemeID='0009']", loc + ("siret",),
                               f"{id_term} (SIRET)", required=False))
    company = x.find(party, "cac:PartyLegalEntity/cbc:CompanyID")
    if company is not None and (company.get("schemeID") == "0002"
                                or (company.get("schemeID") is None and _NINE_DIGITS.match((company.text or "").strip()))):
        x.put(out, "siren", x.text(party, "cac:PartyLegalEntity/cbc:CompanyID", loc + ("siren",), legal_term))
    x.put(out, "vat_id", x.text(party, "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID",
                                loc + ("vat_id",), vat_term, required=False))
    x.put(out, "electronic_address", x.electronic_address(party, "cbc:EndpointID", loc))
    return out


def _line(x: Extraction, line: etree._Element, loc: Loc, credit: bool) -> dict:
    x.at(loc, line)
    out: dict[str, Any] = {}
    x.put(out, "description", x.text(line, "cac:Item/cbc:Name", loc + ("description",), "BT-153 Item name"))
    x.put(out, "quantity", x.text(line, "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity",
                                  loc + ("quantity",), "BT-129 Invoiced quantity"))
    x.put(out, "unit_price", x.text(line, "cac:Price/cbc:PriceAmount", loc + ("unit_price",), "BT-146 Item net price"))
    x.put(out, "price_base_quantity", x.text(line, "cac:Price/cbc:BaseQuantity", loc + ("price_base_quantity",),
                                             "BT-149", required=False))
    category = x.find(line, "cac:Item/cac:ClassifiedTaxCategory")
    rate = x.text(line, "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", loc + ("vat_rate",),
                  "BT-152 Invoiced item VAT rate", required=category is None)
    x.put(out, "vat_rate", rate if rate is not None or category is None else "0")  # categories O, E… carry no rate
    x.put(out, "line_total_excl_tax", x.text(line, "cbc:LineExtensionAmount", loc + ("line_total_excl_tax",),
                                             "BT-131 Invoice line net amount"))
    out["allowances_charges"] = [_allowance_charge(x, item, loc + ("allowances_charges", i), document_level=False)
                                 for i, item in enumerate(x.find_all(line, "cac:AllowanceCharge"))]
    return out


def _allowance_charge(x: Extraction, item: etree._Element, loc: Loc, *, document_level: bool) -> dict:
    x.at(loc, item)
    out: dict[str, Any] = {"charge": indicator(x.text(item, "cbc:ChargeIndicator", loc + ("charge",),
                                                      "Charge indicator"))}
    x.put(out, "amount", x.text(item, "cbc:Amount", loc + ("amount",), "BT-92/BT-99 amount"))
    x.put(out, "reason", x.text(item, "cbc:AllowanceChargeReason", loc + ("reason",), "BT-97", required=False))
    x.put(out, "reason_code", x.text(item, "cbc:AllowanceChargeReasonCode", loc + ("reason_code",), "BT-98",
                                     required=False))
    if document_level:
        x.put(out, "vat_rate", x.text(item, "cac:TaxCategory/cbc:Percent", loc + ("vat_rate",), "BT-96/BT-103 VAT rate",
                                      required=False) or "0")
    return out


def _tax_total(x: Extraction, root: etree._Element, currency: str | None) -> etree._Element | None:
    """The cac:TaxTotal in the invoice currency (a second one may state BT-111 in the VAT currency)."""
    totals = x.find_all(root, "cac:TaxTotal")
    in_currency = [t for t in totals if x.find(t, "cbc:TaxAmount") is not None
                   and x.find(t, "cbc:TaxAmount").get("currencyID") in (currency, None)]
    return (in_currency or totals or [None])[0]


def _vat_entry(x: Extraction, entry: etree._Element, loc: Loc) -> dict:
    x.at(loc, entry)
    out: dict[str, Any] = {}
    x.put(out, "taxable_amount", x.text(entry, "cbc:TaxableAmount", loc + ("taxable_amount",), "BT-116"))
    x.put(out, "tax_amount", x.text(entry, "cbc:TaxAmount", loc + ("tax_amount",), "BT-117"))
    x.put(out, "category_code", x.text(entry, "cac:TaxCategory/cbc:ID", loc + ("category_code",), "BT-118",
                                       required=False))
    x.put(out, "vat_rate", x.text(entry, "cac:TaxCategory/cbc:Percent", loc + ("vat_rate",), "BT-119",
                                  required=False) or "0")
    return out

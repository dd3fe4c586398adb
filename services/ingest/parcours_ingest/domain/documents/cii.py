"""UN/CEFACT Cross Industry Invoice D16B (as in Factur-X / ZUGFeRD 2) → the invoice payload.

customer_ref is BT-46 Buyer identifier (ram:BuyerTradeParty/ram:ID, else its ram:GlobalID), for the
same reason as in UBL: BT-10 Buyer reference is the buyer's own routing reference, not ours."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from parcours_ingest.domain.documents.reader import Extraction, Loc, indicator

_CII_DATE = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})$")  # format 102
_SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
_AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"


def read_cii(root: etree._Element) -> Extraction:
    """The payload of a CrossIndustryInvoice, with the XPath of each value."""
    x = Extraction(root)
    p = x.payload
    x.put(p, "number", x.text(root, "rsm:ExchangedDocument/ram:ID", ("number",), "BT-1 Invoice number"))
    x.put(p, "type_code", x.text(root, "rsm:ExchangedDocument/ram:TypeCode", ("type_code",), "BT-3 Invoice type code"))
    x.put(p, "business_process", x.business_process(
        root, "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID"))
    x.put(p, "issue_date", _date(x.text(root, "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
                                        ("issue_date",), "BT-2 Invoice issue date")))
    settlement = x.require(root, _SETTLEMENT, ("totals",), "ApplicableHeaderTradeSettlement")
    credit = p.get("type_code") == "381"
    due = _date(x.text(settlement, "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
                       ("due_date",), "BT-9 Payment due date", required=not credit))
    x.put(p, "due_date", due or (p.get("issue_date") if credit else None))  # a credit note is due when issued
    x.put(p, "payment_terms", x.text(settlement, "ram:SpecifiedTradePaymentTerms/ram:Description", ("payment_terms",),
                                     "BT-20 Payment terms", required=False))
    x.put(p, "currency", x.text(settlement, "ram:InvoiceCurrencyCode", ("currency",), "BT-5 Invoice currency code"))

    seller = x.require(root, f"{_AGREEMENT}/ram:SellerTradeParty", ("seller",), "BG-4 Seller")
    p["seller"] = _party(x, seller, ("seller",), names=("BT-27", "BT-29", "BT-30", "BT-31"))
    buyer = x.require(root, f"{_AGREEMENT}/ram:BuyerTradeParty", ("buyer",), "BG-7 Buyer")
    p["buyer"] = _party(x, buyer, ("buyer",), names=("BT-44", "BT-46", "BT-47", "BT-48"))
    if buyer is not None:
        ref_xpath = "ram:ID" if x.find(buyer, "ram:ID") is not None else "ram:GlobalID"
        x.put(p["buyer"], "customer_ref", x.text(buyer, ref_xpath, ("buyer", "customer_ref"),
                                                 "BT-46 Buyer identifier (our customer_ref)"))

    items = x.find_all(root, "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem")
    x.at(("lines",), root, "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem")
    if not items:
        x.require(root, "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", ("lines",),
                  "BG-25 Invoice line")
    p["lines"] = [_line(x, item, ("lines", i)) for i, item in enumerate(items)]
    if settlement is None:
        x.raise_if_missing()
        return x
    p["allowances_charges"] = [_allowance_charge(x, item, ("allowances_charges", i), document_level=True)
                               for i, item in enumerate(x.find_all(settlement, "ram:SpecifiedTradeAllowanceCharge"))]
    x.at(("vat_breakdown",), settlement, "ram:ApplicableTradeTax")
    p["vat_breakdown"] = [_vat_entry(x, tax, ("vat_breakdown", i))
                          for i, tax in enumerate(x.find_all(settlement, "ram:ApplicableTradeTax"))]

    summation = x.require(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation", ("totals",),
                          "BG-22 Document totals")
    totals: dict[str, Any] = {}
    currency = p.get("currency")
    for key, xpath, term, required in (
            ("lines_total", "ram:LineTotalAmount", "BT-106 Sum of invoice line net amount", False),
            ("charge_total", "ram:ChargeTotalAmount", "BT-108", False),
            ("allowance_total", "ram:AllowanceTotalAmount", "BT-107", False),
            ("total_excl_tax", "ram:TaxBasisTotalAmount", "BT-109 Invoice total amount without VAT", True),
            # BT-110 is the TaxTotalAmount in the invoice currency (another may give BT-111)
            ("total_tax", f"ram:TaxTotalAmount[@currencyID='{currency}' or not(@currencyID)]"
             if currency and re.fullmatch(r"[A-Z]{3}", currency) else "ram:TaxTotalAmount",
             "BT-110 Invoice total VAT amount", True),
            ("total_incl_tax", "ram:GrandTotalAmount", "BT-112 Invoice total amount with VAT", True),
            ("prepaid_amount", "ram:TotalPrepaidAmount", "BT-113", False),
            ("amount_due", "ram:DuePayableAmount", "BT-115 Amount due for payment", False)):
        x.put(totals, key, x.text(summation, xpath, ("totals", key), term, required=required))
    p["totals"] = totals
    x.raise_if_missing()
    return x


def _date(value: str | None) -> str | None:
    """20261102 → 2026-11-02; anything else is left for the model to refuse at its XPath."""
    if value is None:
        return None
    match = _CII_DATE.match(value)
    return "-".join(match.groups()) if match else value


def _party(x: Extraction, party: etree._Element | None, loc: Loc, *, names: tuple[str, str, str, str]) -> dict:
    name_term, id_term, legal_term, vat_term = names
    out: dict[str, Any] = {}
    if party is None:
        return out
    x.at(loc, party)
    x.put(out, "name", x.text(party, "ram:Name", loc + ("name",), f"{name_term} name"))
    x.put(out, "siret", x.text(party, "ram:GlobalID[@schemeID='0009']", loc + ("siret",), f"{id_term} (SIRET)",
                               required=False))
    x.put(out, "siren", x.text(party, "ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']", loc + ("siren",),
                               legal_term, required=False))
    x.put(out, "vat_id", x.text(party, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']", loc + ("vat_id",),
                                vat_term, required=False))
    x.put(out, "electronic_address", x.electronic_address(party, "ram:URIUniversalCommunication/ram:URIID", loc))
    return out


def _line(x: Extraction, item: etree._Element, loc: Loc) -> dict:
    x.at(loc, item)
    out: dict[str, Any] = {}
    x.put(out, "description", x.text(item, "ram:SpecifiedTradeProduct/ram:Name", loc + ("description",),
                                     "BT-153 Item name"))
    x.put(out, "quantity", x.text(item, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", loc + ("quantity",),
                                  "BT-129 Invoiced quantity"))
    price = "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice"
    x.put(out, "unit_price", x.text(item, f"{price}/ram:ChargeAmount", loc + ("unit_price",), "BT-146 Item net price"))
    x.put(out, "price_base_quantity", x.text(item, f"{price}/ram:BasisQuantity", loc + ("price_base_quantity",),
                                             "BT-149", required=False))
    trade = "ram:SpecifiedLineTradeSettlement"
    x.put(out, "vat_rate", x.text(item, f"{trade}/ram:ApplicableTradeTax/ram:RateApplicablePercent",
                                  loc + ("vat_rate",), "BT-152 Invoiced item VAT rate", required=False) or "0")
    x.put(out, "line_total_excl_tax", x.text(
        item, f"{trade}/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        loc + ("line_total_excl_tax",), "BT-131 Invoice line net amount"))
    out["allowances_charges"] = [_allowance_charge(x, ac, loc + ("allowances_charges", i), document_level=False)
                                 for i, ac in enumerate(x.find_all(item, f"{trade}/ram:SpecifiedTradeAllowanceCharge"))]
    return out


def _allowance_charge(x: Extraction, item: etree._Element, loc: Loc, *, document_level: bool) -> dict:
    x.at(loc, item)
    out: dict[str, Any] = {"charge": indicator(x.text(item, "ram:ChargeIndicator/udt:Indicator", loc + ("charge",),
                                                      "Charge indicator"))}
    x.put(out, "amount", x.text(item, "ram:ActualAmount", loc + ("amount",), "BT-92/BT-99 amount"))
    x.put(out, "reason_code", x.text(item, "ram:ReasonCode", loc + ("reason_code",), "BT-98", required=False))
    x.put(out, "reason", x.text(item, "ram:Reason", loc + ("reason",), "BT-97", required=False))
    if document_level:
        x.put(out, "vat_rate", x.text(item, "ram:CategoryTradeTax/ram:RateApplicablePercent", loc + ("vat_rate",),
                                      "BT-96/BT-103 VAT rate", required=False) or "0")
    return out


def _vat_entry(x: Extraction, tax: etree._Element, loc: Loc) -> dict:
    x.at(loc, tax)
    out: dict[str, Any] = {}
    x.put(out, "tax_amount", x.text(tax, "ram:CalculatedAmount", loc + ("tax_amount",), "BT-117"))
    x.put(out, "taxable_amount", x.text(tax, "ram:BasisAmount", loc + ("taxable_amount",), "BT-116"))
    x.put(out, "category_code", x.text(tax, "ram:CategoryCode", loc + ("category_code",), "BT-118", required=False))
    x.put(out, "vat_rate", x.text(tax, "ram:RateApplicablePercent", loc + ("vat_rate",), "BT-119",
                                  required=False) or "0")
    return out

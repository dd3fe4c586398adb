"""The invoice an ERP sends, named after the EN 16931 semantic model (BT = business term,
BG = business group). A deliberate subset: what delivery and dunning need, plus the
amounts needed to check the invoice adds up.

Amounts are Decimal. Bodies are parsed with JSON numbers read as Decimal (never float), and
strings such as "120.50" are accepted too."""

from __future__ import annotations

import base64
import binascii
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

PDF_MAGIC = b"%PDF-"
# The same as InvoiceSummary.customer_ref in the contracts: it travels in the event and in router URLs.
CUSTOMER_REF_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


def _plain_notation(value: Decimal) -> Decimal:
    """1E+2 → 100, keeping the scale the sender gave otherwise (1.50 stays 1.50)."""
    return Decimal(format(value, "f"))


Amount = Annotated[Decimal, Field(max_digits=18, decimal_places=2), AfterValidator(_plain_notation)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=6), AfterValidator(_plain_notation)]
UnitPrice = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6), AfterValidator(_plain_notation)]
VatRate = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4), AfterValidator(_plain_notation)]

# Dates outside this range are typing errors (or probes), and overflow the date arithmetic downstream.
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
Siren = Annotated[str, Field(pattern=r"^[0-9]{9}$", description="French SIREN (9 digits), legal registration identifier.")]
Siret = Annotated[str, Field(pattern=r"^[0-9]{14}$", description="French SIRET (14 digits), establishment identifier.")]
VatId = Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9A-Za-z+*.]{2,13}$",
                             description="VAT identifier with its ISO 3166-1 country prefix, e.g. FR32123456789.")]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PostalAddress(_Part):
    """BG-5 Seller / BG-8 Buyer postal address (printed on the rendered PDF, written in Factur-X and UBL)."""

    line1: str | None = Field(default=None, max_length=200, description="BT-35/BT-50 Address line 1.")
    line2: str | None = Field(default=None, max_length=200, description="BT-36/BT-51 Address line 2.")
    postcode: str | None = Field(default=None, max_length=20, description="BT-38/BT-53 Post code.")
    city: str | None = Field(default=None, max_length=100, description="BT-37/BT-52 City.")
    country_code: str = Field(default="FR", pattern=r"^[A-Z]{2}$", description="BT-40/BT-55 Country code (ISO 3166-1).")


class ElectronicAddress(_Part):
    """BT-34 Seller / BT-49 Buyer electronic address and its scheme (BT-34-1 / BT-49-1, the EAS code list).
    In France, scheme 0225 (the e-invoicing directory): the SIREN, SIREN_SIRET or SIREN_SUFFIX."""

    scheme: str = Field(default="0225", pattern=r"^(?:[0-9]{4}|[A-Z]{2})$",
                        description="EAS code: 0225 French directory, 0009 SIRET, 0088 GLN, EM e-mail…")
    value: str = Field(min_length=1, max_length=125, pattern=r"^[^\s]+$", description="The address itself.")


class Seller(_Part):
    """BG-4 Seller."""

    name: str = Field(min_length=1, max_length=200, description="BT-27 Seller name.")
    siren: Siren | None = Field(default=None, description="BT-30 Seller legal registration identifier (SIREN, scheme 0002).")
    siret: Siret | None = Field(default=None, description="BT-29 Seller identifier (SIRET, scheme 0009).")
    vat_id: VatId | None = Field(default=None, description="BT-31 Seller VAT identifier.")
    address: PostalAddress | None = Field(default=None, description="BG-5 Seller postal address.")
    electronic_address: ElectronicAddress | None = Field(
        default=None, description="BT-34 Seller electronic address; absent, the outgoing CII and UBL give the SIREN "
                                  "in scheme 0225 (the directory's first address of every company).")


class Buyer(_Part):
    """BG-7 Buyer."""

    customer_ref: str = Field(pattern=CUSTOMER_REF_PATTERN,
                              description="The tenant's own reference of this customer (akin to BT-46 Buyer identifier); "
                                          "the router's customer directory is keyed on it.")
    name: str = Field(min_length=1, max_length=200, description="BT-44 Buyer name.")
    siren: Siren | None = Field(default=None, description="BT-47 Buyer legal registration identifier (SIREN, scheme 0002).")
    siret: Siret | None = Field(default=None, description="BT-46 Buyer identifier (SIRET, scheme 0009).")
    vat_id: VatId | None = Field(default=None, description="BT-48 Buyer VAT identifier.")
    address: PostalAddress | None = Field(default=None, description="BG-8 Buyer postal address.")
    electronic_address: ElectronicAddress | None = Field(
        default=None, description="BT-49 Buyer electronic address; absent, the SIREN in scheme 0225 (as BT-34).")


# BT-23 in France: the billing framework ("cadre de facturation") of the CTC reform — B goods, S services,
# M both; 1 an invoice to pay, 2 already paid, 4 a final invoice after down payments, …
BusinessProcess = Literal["B1", "S1", "M1", "B2", "S2", "M2", "S3", "B4", "S4", "M4", "S5", "S6", "B7", "S7", "B8", "S8",
                          "M8", "B9", "S9", "M9"]
DEFAULT_BUSINESS_PROCESS = "S1"  # services, to pay: what Parcours' tenants (dunning their customers) mostly send

# UNTDID 1001 document types of EN 16931 that Parcours delivers and duns (a credit note is never dunned).
TypeCode = Literal["380", "381", "384", "389"]
CREDIT_NOTE = "381"


class AllowanceCharge(_Part):
    """An allowance (BG-20 on the document, BG-27 on a line) or a charge (BG-21, BG-28)."""

    charge: bool = Field(default=False,
                         description="Charge indicator (ChargeIndicator): true for a charge, false for an allowance.")
    amount: Amount = Field(description="BT-92/BT-99 (document) or BT-136/BT-141 (line) amount, without VAT.")
    vat_rate: VatRate | None = Field(default=None, description="BT-96/BT-103 VAT rate of a document-level allowance or "
                                                               "charge (required there; lines use the line's rate).")
    reason: str | None = Field(default=None, max_length=200, description="BT-97/BT-104 reason.")
    reason_code: str | None = Field(default=None, max_length=10, description="BT-98/BT-105 reason code (UNTDID 5189/7161).")


class VatBreakdown(_Part):
    """BG-23 VAT breakdown: one entry per VAT rate."""

    vat_rate: VatRate = Field(description="BT-119 VAT category rate, in percent.")
    category_code: str | None = Field(default=None, pattern=r"^[A-Z]{1,2}$",
                                      description="BT-118 VAT category code (UNCL 5305: S, Z, E, AE, K, G, O, L, M).")
    taxable_amount: Amount = Field(description="BT-116 VAT category taxable amount.")
    tax_amount: Amount = Field(description="BT-117 VAT category tax amount.")


class InvoiceLine(_Part):
    """BG-25 Invoice line."""

    description: str = Field(min_length=1, max_length=1000, description="BT-153 Item name / BT-154 Item description.")
    quantity: Quantity = Field(description="BT-129 Invoiced quantity (> 0).")
    unit_price: UnitPrice = Field(description="BT-146 Item net price, excluding VAT (≥ 0).")
    vat_rate: VatRate = Field(description="BT-152 Invoiced item VAT rate, in percent (0–100).")
    line_total_excl_tax: Amount = Field(
        description="BT-131 Invoice line net amount: quantity × unit price (÷ BT-149 price base quantity), "
                    "rounded half up to 2 decimals, minus line allowances, plus line charges.")
    price_base_quantity: Quantity | None = Field(default=None, description="BT-149 Item price base quantity (1 if absent).")
    allowances_charges: list[AllowanceCharge] = Field(default_factory=list, max_length=100,
                                                      description="BG-27 line allowances and BG-28 line charges.")


class Totals(_Part):
    """BG-22 Document totals."""

    total_excl_tax: Amount = Field(description="BT-109 Invoice total amount without VAT: the sum of the line net amounts, "
                                               "minus document allowances, plus document charges.")
    total_tax: Amount = Field(description="BT-110 Invoice total VAT amount: per VAT rate (BG-23), "
                                          "the taxable base × rate / 100 rounded half up to 2 decimals, summed.")
    total_incl_tax: Amount = Field(description="BT-112 Invoice total amount with VAT: BT-109 + BT-110.")
    lines_total: Amount | None = Field(default=None, description="BT-106 Sum of invoice line net amounts (checked if given).")
    allowance_total: Amount | None = Field(default=None, description="BT-107 Sum of document-level allowances.")
    charge_total: Amount | None = Field(default=None, description="BT-108 Sum of document-level charges.")
    prepaid_amount: Amount | None = Field(default=None, description="BT-113 Paid amount.")
    amount_due: Amount | None = Field(default=None, description="BT-115 Amount due for payment: BT-112 − BT-113.")


class InvoiceContent(_Part):
    """The invoice's data, as stored and served back (the PDF is kept and served apart)."""

    number: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$",  # it ends up in mail and HTTP headers
                        description="BT-1 Invoice number; unique per tenant, seller and issue year; no control characters.")
    type_code: TypeCode = Field(default="380", description="BT-3 Invoice type code: 380 commercial invoice, "
                                                           "381 credit note, 384 corrected invoice, 389 self-billed.")
    business_process: BusinessProcess | None = Field(
        default=None, description="BT-23 Business process type: in France the billing framework (B1 goods, S1 services, "
                                  "M1 both, B2/S2/M2 already paid, B4/S4/M4 final invoice after down payments…); "
                                  f"absent, the outgoing CII and UBL say {DEFAULT_BUSINESS_PROCESS}.")
    issue_date: date = Field(ge=EARLIEST, le=LATEST, description="BT-2 Invoice issue date (2000–2099).")
    due_date: date = Field(ge=EARLIEST, le=LATEST, description="BT-9 Payment due date; on or after the issue date.")
    payment_terms: str | None = Field(default=None, min_length=1, max_length=1000,
                                      description="BT-20 Payment terms, as printed on the invoice (e.g. \"30 jours fin "
                                                  "de mois, pas d'escompte pour paiement anticipé\").")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="BT-5 Invoice currency code (ISO 4217), e.g. EUR.")
    seller: Seller = Field(description="BG-4 Seller.")
    buyer: Buyer = Field(description="BG-7 Buyer.")
    lines: list[InvoiceLine] = Field(min_length=1, max_length=10000, description="BG-25 Invoice lines (at least one).")
    allowances_charges: list[AllowanceCharge] = Field(default_factory=list, max_length=100,
                                                      description="BG-20 document allowances and BG-21 document charges.")
    vat_breakdown: list[VatBreakdown] | None = Field(default=None, max_length=100,
                                                     description="BG-23 VAT breakdown (checked against the lines if given).")
    totals: Totals = Field(description="BG-22 Document totals.")

    @property
    def is_credit_note(self) -> bool:
        return self.type_code == CREDIT_NOTE

    @field_validator("allowances_charges")
    @classmethod
    def _document_level_ones_have_a_vat_rate(cls, items: list[AllowanceCharge]) -> list[AllowanceCharge]:
        if any(item.vat_rate is None for item in items):
            raise ValueError("a document-level allowance or charge needs its vat_rate (BT-96/BT-103)")
        return items

    @field_validator("due_date")
    @classmethod
    def _due_after_issue(cls, due_date: date, info: ValidationInfo) -> date:
        issue_date = info.data.get("issue_date")
        if issue_date is not None and due_date < issue_date:
            raise ValueError(f"the due date must be on or after the issue date ({issue_date.isoformat()})")
        return due_date


class Invoice(InvoiceContent):
    """An invoice as received from the tenant's ERP."""

    pdf: str | None = Field(default=None, description="The invoice rendered as PDF (BT-125 attached document), base64-encoded.",
                            json_schema_extra={"contentEncoding": "base64", "contentMediaType": "application/pdf"})

    @field_validator("pdf")
    @classmethod
    def _pdf_is_base64_pdf(cls, pdf: str | None) -> str | None:
        if pdf is not None:
            decode_pdf(pdf)
        return pdf

    def pdf_bytes(self) -> bytes | None:
        return decode_pdf(self.pdf) if self.pdf is not None else None

    def document(self) -> dict:
        """The invoice as stored and served: JSON types, money as decimal strings, without the PDF.
        Optional EN 16931 parts left out are not written (a JSON invoice reads back as it was sent)."""
        document = _without_empty(self.model_dump(mode="json", exclude={"pdf"}), _OPTIONAL_PARTS)
        document["totals"] = _without_empty(document["totals"], _OPTIONAL_TOTALS)
        document["lines"] = [_without_empty(line, _OPTIONAL_LINE_PARTS) for line in document["lines"]]
        for role in ("seller", "buyer"):
            document[role] = _without_empty(document[role], ("address", "electronic_address"))
        return document


_OPTIONAL_PARTS = ("allowances_charges", "vat_breakdown", "payment_terms", "business_process")
_OPTIONAL_TOTALS = ("lines_total", "allowance_total", "charge_total", "prepaid_amount", "amount_due")
_OPTIONAL_LINE_PARTS = ("price_base_quantity", "allowances_charges")


def _without_empty(values: dict, keys: tuple[str, ...]) -> dict:
    return {key: value for key, value in values.items() if key not in keys or value not in (None, [])}


def decode_pdf(encoded: str) -> bytes:
    """The bytes of a base64 PDF (line breaks tolerated); ValueError if it is not one."""
    try:
        content = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the PDF must be base64-encoded") from None
    if not content.startswith(PDF_MAGIC):
        raise ValueError("the decoded content is not a PDF (it must start with %PDF-)")
    return content

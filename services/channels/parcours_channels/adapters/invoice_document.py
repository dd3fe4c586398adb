"""The invoice's full content for structured channels (EDIFACT, UBL), read from ingest by claim check.

Events carry the invoice summary only; an adapter that sends a structured document reads the
invoice as ingest stored it (`GET /v1/invoices/{id}`) with the document-reader token and the
tenant header, like `documents.fetch_document` reads the source document. The answer is validated here: a partner must never get a document built on an
answer we did not understand."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parcours_channels.adapters import TransientDeliveryError
from parcours_channels.adapters.documents import DocumentSettings
from parcours_channels.adapters.partner_once import PartnerRefused
from parcours_contracts import DispatchRequested
from parcours_runtime.service import ServiceContext

READER_TENANT_HEADER = "X-Parcours-Tenant"
CENT = Decimal("0.01")


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Party(_Read):
    name: str = Field(min_length=1, max_length=200)
    siren: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    siret: str | None = Field(default=None, pattern=r"^[0-9]{14}$")
    vat_id: str | None = Field(default=None, pattern=r"^[A-Z]{2}[0-9A-Za-z+*.]{2,13}$")
    customer_ref: str | None = None

    @property
    def country(self) -> str:
        """ISO 3166-1 country: the VAT id's prefix, else France (SIREN/SIRET are French)."""
        return self.vat_id[:2] if self.vat_id else "FR"


class Line(_Read):
    description: str = Field(min_length=1, max_length=1000)
    quantity: Decimal = Field(gt=0)
    unit_price: Decimal = Field(ge=0)
    price_base_quantity: Decimal | None = Field(default=None, gt=0)
    vat_rate: Decimal = Field(ge=0, le=100)
    line_total_excl_tax: Decimal


class DocumentAllowanceCharge(_Read):
    charge: bool = False
    amount: Decimal
    vat_rate: Decimal = Field(ge=0, le=100)
    reason: str | None = None


class Totals(_Read):
    total_excl_tax: Decimal
    total_tax: Decimal
    total_incl_tax: Decimal
    prepaid_amount: Decimal | None = None
    amount_due: Decimal | None = None


class VatSubtotal(_Read):
    vat_rate: Decimal
    category_code: str = "S"
    taxable_amount: Decimal
    tax_amount: Decimal


class InvoiceDocument(_Read):
    """What ingest serves for one invoice (EN 16931 subset)."""

    invoice_id: UUID
    number: str = Field(min_length=1, max_length=64)
    type_code: str = "380"
    issue_date: date
    due_date: date
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    seller: Party
    buyer: Party
    lines: list[Line] = Field(min_length=1)
    allowances_charges: list[DocumentAllowanceCharge] = Field(default_factory=list)
    vat_breakdown: list[VatSubtotal] | None = None
    totals: Totals

    @property
    def amount_due(self) -> Decimal:
        if self.totals.amount_due is not None:
            return self.totals.amount_due
        return self.totals.total_incl_tax - (self.totals.prepaid_amount or Decimal(0))

    @property
    def lines_total(self) -> Decimal:
        return sum((line.line_total_excl_tax for line in self.lines), Decimal(0))

    def vat_subtotals(self) -> list[VatSubtotal]:
        """The VAT breakdown as sent, or computed from the lines and document allowances/charges."""
        if self.vat_breakdown:
            return list(self.vat_breakdown)
        bases: dict[Decimal, Decimal] = {}
        for line in self.lines:
            bases[line.vat_rate] = bases.get(line.vat_rate, Decimal(0)) + line.line_total_excl_tax
        for item in self.allowances_charges:
            bases[item.vat_rate] = bases.get(item.vat_rate, Decimal(0)) + (item.amount if item.charge else -item.amount)
        return [VatSubtotal(vat_rate=rate, category_code="S" if rate else "Z", taxable_amount=base,
                            tax_amount=(base * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP))
                for rate, base in sorted(bases.items())]


async def fetch_invoice(ctx: ServiceContext, request: DispatchRequested) -> InvoiceDocument:
    """The invoice as ingest stored it. PartnerRefused when ingest does not serve it;
    TransientDeliveryError when ingest is away."""
    settings = DocumentSettings.of(ctx.settings)
    if settings.ingest_document_token is None:
        raise PartnerRefused("no document-reader token configured for ingest (PARCOURS_CHANNELS_INGEST_DOCUMENT_TOKEN)")
    try:
        response = await ctx.http.get(
            f"{settings.ingest_url.rstrip('/')}/v1/invoices/{request.invoice_id}",
            headers={"Authorization": f"Bearer {settings.ingest_document_token.get_secret_value()}",
                     READER_TENANT_HEADER: request.tenant_id})
    except httpx.HTTPError as exc:
        raise TransientDeliveryError(f"ingest unreachable: {type(exc).__name__}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientDeliveryError(f"ingest answered {response.status_code}")
    if response.status_code != 200:
        raise PartnerRefused(f"ingest answered {response.status_code} for the invoice")
    try:
        document = InvoiceDocument.model_validate_json(response.content)
    except ValidationError as exc:
        raise PartnerRefused(f"ingest's answer is not an invoice ({exc.error_count()} error(s))") from None
    if document.invoice_id != request.invoice_id:
        raise PartnerRefused("ingest answered with another invoice")
    return document

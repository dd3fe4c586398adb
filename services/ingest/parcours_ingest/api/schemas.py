"""Shapes of the HTTP answers (the invoice itself is parcours_ingest.domain.invoice.Invoice)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from parcours_ingest.domain.invoice import InvoiceContent
from parcours_ingest.domain.tenants import TENANT_ID_PATTERN


class InvoiceAccepted(BaseModel):
    """The invoice is stored and InvoiceReceived is on its way."""

    invoice_id: uuid.UUID
    status: Literal["received"] = "received"
    number: str = Field(description="BT-1 Invoice number, as sent.")


class InvoiceRead(InvoiceContent):
    """A stored invoice: the document as received (without the PDF) and what ingest added."""

    invoice_id: uuid.UUID
    status: Literal["received"] = "received"
    received_at: datetime
    has_pdf: bool = Field(description="Whether GET /v1/invoices/{invoice_id}/pdf serves a PDF.")
    source_format: Literal["json", "ubl", "cii", "factur-x"] = Field(
        default="json", description="How the invoice came in; for all but json, GET …/source serves the XML.")


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="The tenant's display name.")
    tenant_id: str | None = Field(default=None, pattern=TENANT_ID_PATTERN,
                                  description="Slug identifying the tenant everywhere; generated from the name if absent.")


class IssuedApiKey(BaseModel):
    """A new API key. `api_key` is shown this once; only its hash is kept."""

    tenant_id: str
    name: str
    key_id: str
    api_key: str

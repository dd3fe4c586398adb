"""The invoice document a partner channel deposits, fetched from ingest (a claim check).

Events carry the invoice summary, never the document: a partner adapter reads the structured
document ingest kept (`GET /v1/invoices/{id}/source`, and `/pdf` for a Factur-X) with the
document-reader token and the tenant's id. An invoice sent as data has no source document: it goes
as the Factur-X ingest prepares for it (`/facturx`, its CII read from `/cii`), annexes included."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import httpx
from lxml import etree
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from parcours_channels.adapters import TransientDeliveryError
from parcours_channels.adapters.partner_once import PartnerRefused
from parcours_contracts import DispatchRequested

Syntax = Literal["facturx", "cii", "ubl"]
_CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
_UBL = {"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


class DocumentSettings(BaseSettings):
    """Where ingest is and the token to read with: channels' `ingest_url` and `ingest_document_token`
    (`of(ctx.settings)`; without arguments, read from the same environment variables)."""

    model_config = SettingsConfigDict(env_prefix="PARCOURS_CHANNELS_", extra="ignore")

    ingest_url: str = Field(default="http://127.0.0.1:8101", pattern=r"^https?://")
    ingest_document_token: SecretStr | None = None

    @classmethod
    def of(cls, settings) -> DocumentSettings:
        return cls(ingest_url=settings.ingest_url, ingest_document_token=settings.ingest_document_token)


@dataclass(frozen=True)
class Document:
    content: bytes
    syntax: Syntax
    extension: str  # "pdf" or "xml"
    xml: etree._Element  # the structured invoice (a Factur-X's embedded CII), parsed
    prepared: bool = False  # written by ingest for an invoice sent as data (its annexes already inside)


async def fetch_document(client: httpx.AsyncClient, request: DispatchRequested,
                         settings: DocumentSettings | None = None) -> Document:
    """The structured document of the invoice; PartnerRefused if it has none, transient errors raise."""
    return await fetch_invoice_document(client, tenant_id=request.tenant_id, invoice_id=request.invoice_id,
                                        has_pdf=request.invoice.has_pdf, settings=settings)


async def fetch_invoice_document(client: httpx.AsyncClient, *, tenant_id: str, invoice_id: UUID, has_pdf: bool,
                                 settings: DocumentSettings | None = None) -> Document:
    """The same, for an invoice named without its request (a deposit made later, in a batch)."""
    base, headers = _reader(settings or DocumentSettings(), tenant_id=tenant_id, invoice_id=invoice_id)
    source = await _get(client, f"{base}/source", headers)
    if source is None:  # sent as data: the Factur-X ingest prepares (rendered, CGV and annexes in, CII embedded)
        pdf, cii = await _get(client, f"{base}/facturx", headers), await _get(client, f"{base}/cii", headers)
        if pdf is None or cii is None:
            raise PartnerRefused("ingest has no such invoice to deposit")
        return Document(content=pdf, syntax="facturx", extension="pdf", xml=_parse(cii), prepared=True)
    root = _parse(source)
    syntax = _syntax_of(root)
    if syntax == "cii" and has_pdf:
        pdf = await _get(client, f"{base}/pdf", headers)
        if pdf is not None:  # ingest keeps a Factur-X's embedded CII as its source
            return Document(content=pdf, syntax="facturx", extension="pdf", xml=root)
    return Document(content=source, syntax=syntax, extension="xml", xml=root)


@dataclass(frozen=True)
class Annex:
    """A file added to the invoice at ingest (`POST /v1/invoices/{id}/annexes`)."""

    annex_id: UUID
    filename: str
    media_type: str
    size: int


async def list_annexes(client: httpx.AsyncClient, *, tenant_id: str, invoice_id: UUID,
                       settings: DocumentSettings) -> list[Annex]:
    """The invoice's annexes, in the order they were added; transient errors raise."""
    base, headers = _reader(settings, tenant_id=tenant_id, invoice_id=invoice_id)
    listed = await _get(client, f"{base}/annexes", headers)
    if listed is None:
        raise PartnerRefused("ingest has no such invoice to list the annexes of")
    try:
        return [Annex(annex_id=UUID(a["annex_id"]), filename=str(a["filename"]), media_type=str(a["media_type"]),
                      size=int(a["size"])) for a in json.loads(listed)]
    except (ValueError, KeyError, TypeError):
        raise TransientDeliveryError("ingest's list of annexes is malformed") from None


async def fetch_annex(client: httpx.AsyncClient, annex: Annex, *, tenant_id: str, invoice_id: UUID,
                      settings: DocumentSettings) -> bytes:
    """One annex's content, checked against the size ingest listed."""
    base, headers = _reader(settings, tenant_id=tenant_id, invoice_id=invoice_id)
    content = await _get(client, f"{base}/annexes/{annex.annex_id}", headers)
    if content is None or len(content) != annex.size:
        raise TransientDeliveryError(f"ingest did not serve the annex {annex.filename!r} as listed")
    return content


async def fetch_ubl(client: httpx.AsyncClient, request: DispatchRequested, settings: DocumentSettings) -> bytes:
    """The invoice as UBL 2.1 (EN 16931), written by ingest from what it stored, whatever it came as."""
    base, headers = _reader(settings, tenant_id=request.tenant_id, invoice_id=request.invoice_id)
    ubl = await _get(client, f"{base}/ubl", headers)
    if ubl is None:
        raise PartnerRefused("ingest has no such invoice to write as UBL")
    return ubl


def _reader(settings: DocumentSettings, *, tenant_id: str, invoice_id: UUID) -> tuple[str, dict[str, str]]:
    """The invoice's URL at ingest and the document reader's headers."""
    if settings.ingest_document_token is None:
        raise PartnerRefused("no document-reader token configured for ingest (PARCOURS_CHANNELS_INGEST_DOCUMENT_TOKEN)")
    headers = {"Authorization": f"Bearer {settings.ingest_document_token.get_secret_value()}",
               "X-Parcours-Tenant": tenant_id}
    return f"{settings.ingest_url.rstrip('/')}/v1/invoices/{invoice_id}", headers


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> bytes | None:
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise TransientDeliveryError(f"ingest unreachable: {type(exc).__name__}") from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise TransientDeliveryError(f"ingest answered {response.status_code} for the invoice document")
    return response.content


def _parse(xml: bytes) -> etree._Element:
    try:
        return etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError:
        raise PartnerRefused("the invoice's source document is not well-formed XML") from None


def _syntax_of(root: etree._Element) -> Syntax:
    namespace = etree.QName(root).namespace
    if namespace == _CII:
        return "cii"
    if namespace in _UBL:
        return "ubl"
    raise PartnerRefused(f"unsupported source document {etree.QName(root).localname!r}")

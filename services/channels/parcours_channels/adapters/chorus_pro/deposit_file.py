"""The one file Chorus Pro gets for an invoice: its document with the annexes added at ingest.

Chorus Pro takes an invoice's supporting documents inside the deposited file. A Factur-X ingest
prepared for an invoice sent as data already carries them (PDF annexes merged, other files
attached); a CII or UBL gets them embedded (`domain.attachments`); a Factur-X that arrived as such
is served as received, so with annexes it goes as its CII (E1) carrying the PDF and the annexes.
Chorus Pro's limits are checked on what ingest lists, before anything is downloaded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from uuid import UUID

import httpx
from lxml import etree

from parcours_channels.adapters.documents import (
    DocumentSettings, fetch_annex, fetch_invoice_document, list_annexes,
)
from parcours_channels.adapters.partner_once import PartnerRefused
from parcours_channels.domain.attachments import AttachedFile, with_attachments
from parcours_channels.domain.chorus_pro import SYNTAXES, FileToDeposit, deposit_file_name, limit_violations


@dataclass(frozen=True)
class DepositFile:
    name: str
    content: bytes
    syntax: str  # Chorus Pro's syntaxeFlux
    xml: etree._Element  # the structured invoice, for routing
    ubl: bool
    attachments: tuple[str, ...] = ()  # the names of the files it carries besides the invoice


async def deposit_file(http: httpx.AsyncClient, settings: DocumentSettings, *, tenant_id: str, invoice_id: UUID,
                       has_pdf: bool, number: str, dispatch_id: UUID) -> DepositFile:
    """The invoice's file for Chorus Pro; PartnerRefused (with every reason) when Chorus Pro would refuse it."""
    reading = {"tenant_id": tenant_id, "invoice_id": invoice_id, "settings": settings}
    document = await fetch_invoice_document(http, has_pdf=has_pdf, **reading)
    annexes = await list_annexes(http, **reading)
    carried = [] if document.prepared or not annexes else annexes
    as_cii = bool(carried) and document.syntax == "facturx"  # the received PDF travels inside its CII
    syntax, extension = ("cii", "xml") if as_cii else (document.syntax, document.extension)
    name = deposit_file_name(number, dispatch_id, extension)
    pdf_name = deposit_file_name(number, dispatch_id, "pdf")
    files = [FileToDeposit(pdf_name if as_cii else name, len(document.content)),
             *(FileToDeposit(annex.filename, annex.size) for annex in annexes)]
    if problems := limit_violations(files):
        raise PartnerRefused("; ".join(problems))
    if not carried:
        return DepositFile(name, document.content, SYNTAXES[syntax], document.xml, ubl=syntax == "ubl",
                           attachments=tuple(annex.filename for annex in annexes))
    attached = [AttachedFile(pdf_name, "application/pdf", document.content)] if as_cii else []
    for annex in carried:
        attached.append(AttachedFile(annex.filename, annex.media_type, await fetch_annex(http, annex, **reading)))
    content = await asyncio.to_thread(with_attachments, document.xml, syntax, attached)
    return DepositFile(name, content, SYNTAXES[syntax], document.xml, ubl=syntax == "ubl",
                       attachments=tuple(file.filename for file in attached))

"""The outgoing Factur-X of one invoice from everything that shapes it: the PDF sent with the invoice
(or one rendered here), the CGV of the customer's group, the PDF annexes, the supporting files and
the language. Pure: the same inputs give the same bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

from parcours_ingest.domain.cii_out import cii_invoice
from parcours_ingest.domain.facturx_out import Attachment, Composition, Embedding, Insert, facturx_document
from parcours_ingest.domain.invoice import InvoiceContent
from parcours_ingest.domain.legal import Language, LegalMentions
from parcours_ingest.domain.render_pdf import LABELS, render_invoice


@dataclass(frozen=True)
class FacturxInputs:
    invoice: InvoiceContent
    language: Language
    sent_pdf: bytes | None = None
    cgv: Insert | None = None
    annexes: list[bytes] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


def build_facturx(inputs: FacturxInputs) -> bytes:
    """Render (unless a PDF was sent), insert the CGV, merge the annexes, then embed the CII and the files."""
    invoice, language = inputs.invoice, inputs.language
    mentions = LegalMentions(language=language)
    base = inputs.sent_pdf if inputs.sent_pdf is not None else render_invoice(invoice, language=language,
                                                                                mentions=mentions)
    parts = Composition(base, cgv=inputs.cgv, annexes=list(inputs.annexes))
    return facturx_document(parts, Embedding(
        cii_invoice(invoice, mentions=mentions), language=language, attachments=list(inputs.attachments),
        title=f"{LABELS[language][invoice.type_code]} {invoice.number}", author=invoice.seller.name))

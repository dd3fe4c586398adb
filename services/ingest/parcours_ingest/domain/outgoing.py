"""The outgoing Factur-X of one invoice from everything that shapes it: the invoice's own pages (the
PDF sent with it, or one rendered here), the CGV of the customer's group, the PDF annexes, the
supporting files, the language and the tenant's branding. Pure. Built documents are cached under the hash of those inputs
(`render_key`, `facturx_key`): any change of them gives another key, hence a fresh build."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from parcours_ingest.domain.cii_out import cii_invoice
from parcours_ingest.domain.facturx_out import Attachment, Composition, Embedding, Insert, facturx_document
from parcours_ingest.domain.invoice import InvoiceContent
from parcours_ingest.domain.legal import Language, LegalMentions
from parcours_ingest.domain.render_pdf import LABELS, Branding, render_invoice

# bump when the same inputs would give different bytes (a new layout, another embedding)
RENDER_VERSION = "render/3"
FACTURX_VERSION = "facturx/3"


@dataclass(frozen=True)
class FacturxInputs:
    invoice: InvoiceContent
    language: Language
    pdf: bytes | None = None  # the invoice's own pages (sent with it, or rendered earlier); None: render them
    cgv: Insert | None = None
    annexes: list[bytes] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    branding: Branding | None = None


def render(invoice: InvoiceContent, language: Language, branding: Branding | None = None) -> bytes:
    """The PDF of an invoice sent as data only, in the tenant's branding (None: the default look)."""
    return render_invoice(invoice, language=language, mentions=LegalMentions(language=language), branding=branding)


def branding_fingerprint(values: dict) -> str:
    """What identifies a tenant's branding in the cache keys (the logo by its hash)."""
    return _key("branding", {k: hashlib.sha256(v).hexdigest() if isinstance(v, bytes) else v
                             for k, v in values.items()})


def build_facturx(inputs: FacturxInputs) -> bytes:
    """Render (unless the pages are given), insert the CGV, merge the annexes, then embed the CII and the files."""
    invoice, language = inputs.invoice, inputs.language
    base = inputs.pdf if inputs.pdf is not None else render(invoice, language, inputs.branding)
    parts = Composition(base, cgv=inputs.cgv, annexes=list(inputs.annexes))
    return facturx_document(parts, Embedding(
        cii_invoice(invoice, mentions=LegalMentions(language=language)), language=language,
        attachments=list(inputs.attachments), title=f"{LABELS[language][invoice.type_code]} {invoice.number}",
        author=invoice.seller.name))


@dataclass(frozen=True)
class StoredPart:
    """A stored input of a document, by its blob: the CGV (with its position) or an annex."""

    sha256: str
    name: str = ""
    media_type: str = "application/pdf"
    after_page: int | None = None


def render_key(*, invoice_id: uuid.UUID, document: dict, language: str, branding: str | None = None) -> str:
    """`branding`: the tenant's branding fingerprint (None: the default look)."""
    return _key(RENDER_VERSION, str(invoice_id), document, language, branding)


def facturx_key(*, invoice_id: uuid.UUID, document: dict, language: str, sent_pdf: bool, cgv: StoredPart | None,
                annexes: Iterable[StoredPart], branding: str | None = None) -> str:
    # the branding only shapes rendered pages: a PDF sent with the invoice does not depend on it
    return _key(FACTURX_VERSION, RENDER_VERSION, str(invoice_id), document, language, sent_pdf,
                cgv and [cgv.sha256, cgv.after_page], [[a.sha256, a.name, a.media_type] for a in annexes],
                None if sent_pdf else branding)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()

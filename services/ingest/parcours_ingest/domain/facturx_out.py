"""The outgoing Factur-X PDF: the invoice PDF, the tenant's CGV pages inserted at their position and
the annexes appended, an sRGB output intent added (PDF/A), and only then the CII XML embedded by the
`factur-x` library (PDF/A-3 attachment + XMP): changing the PDF after embedding would break it."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject, TextStringObject

from parcours_ingest.domain.documents.pdf import INVOICE_XML_NAMES


@dataclass(frozen=True)
class Insert:
    """Pages to insert: `after_page` 0 puts them first, None after the last page of the invoice."""

    pdf: bytes
    after_page: int | None = None


@dataclass(frozen=True)
class Attachment:
    """A supporting file carried inside the Factur-X PDF (AFRelationship Supplement)."""

    filename: str
    content: bytes
    description: str = ""


@dataclass
class Composition:
    invoice_pdf: bytes
    cgv: Insert | None = None
    annexes: list[bytes] = field(default_factory=list)


def compose(parts: Composition) -> bytes:
    """One PDF: the invoice's pages with the CGV inserted, then the annexes, with an sRGB output intent."""
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(parts.invoice_pdf)))
    if parts.cgv is not None:
        pages = len(writer.pages)
        position = pages if parts.cgv.after_page is None else min(max(parts.cgv.after_page, 0), pages)
        cgv = PdfReader(io.BytesIO(parts.cgv.pdf))
        for offset, page in enumerate(cgv.pages):
            writer.insert_page(page, position + offset)
    for annex in parts.annexes:
        writer.append(PdfReader(io.BytesIO(annex)))
    _add_output_intent(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def facturx(pdf: bytes, xml: bytes, *, language: str = "fr", attachments: list[Attachment] = (),
            title: str | None = None, author: str | None = None) -> bytes:
    """`pdf` (already composed) with `xml` embedded as factur-x.xml, profile EN 16931, PDF/A-3 metadata.

    The factur-x library's own metadata and attachment code, on a writer of ours: its generate_from_binary
    goes through a temporary file and, with pypdf 7, writes the result after the input's bytes."""
    from facturx.facturx import _facturx_update_metadata_add_attachment

    metadata = {"author": author or "", "keywords": "Factur-X", "title": title or "", "subject": title or ""}
    extra = {a.filename: {"filedata": a.content, "description": a.description, "afrelationship": "supplement"}
             for a in attachments if a.filename.lower() not in INVOICE_XML_NAMES}
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    writer._header = b"%PDF-1.7"  # PDF/A-3 is based on PDF 1.7
    _facturx_update_metadata_add_attachment(writer, xml, metadata, "factur-x", "en16931", lang=language,
                                            additional_attachments=extra, afrelationship="data",
                                            xmp_compression=False)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@lru_cache(maxsize=1)
def _srgb_profile() -> bytes:
    """An sRGB ICC profile, made by Little CMS inside Pillow (nothing read from the network)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _add_output_intent(writer: PdfWriter) -> None:
    profile = DecodedStreamObject()
    profile.set_data(_srgb_profile())
    profile[NameObject("/N")] = NumberObject(3)
    intent = DictionaryObject({
        NameObject("/Type"): NameObject("/OutputIntent"),
        NameObject("/S"): NameObject("/GTS_PDFA1"),
        NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/DestOutputProfile"): writer._add_object(profile),
    })
    writer._root_object[NameObject("/OutputIntents")] = ArrayObject([writer._add_object(intent)])

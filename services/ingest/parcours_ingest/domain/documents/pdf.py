"""PDFs received with an invoice: refused when they carry active content or are too big once
decompressed; the Factur-X / ZUGFeRD XML they embed, if any. pypdf with tight limits."""

from __future__ import annotations

import io
from dataclasses import dataclass

from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError, PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from parcours_ingest.domain.documents import DocumentError

PDF_MAGIC = b"%PDF-"
# The names the Factur-X, ZUGFeRD 2 and XRechnung specifications give the embedded invoice.
INVOICE_XML_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")
_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToE", "/RichMediaExecute"}


@dataclass(frozen=True)
class PdfLimits:
    max_pages: int = 1000
    max_decompressed_bytes: int = 50 * 1024 * 1024  # per stream: a few MB of text, not a zip bomb
    max_xml_bytes: int = 10 * 1024 * 1024


def refused(detail: str, slug: str = "unsafe-pdf") -> DocumentError:
    return DocumentError(422, slug, detail)


def inspect_pdf(content: bytes, *, limits: PdfLimits) -> bytes | None:
    """Check the PDF is one, has no active content and stays within `limits`; the invoice XML
    it embeds (Factur-X), or None. DocumentError 422 otherwise."""
    if not content.startswith(PDF_MAGIC):
        raise refused("The body is not a PDF (it must start with %PDF-).", "not-a-pdf")
    # a raw scan finds actions in uncompressed objects; the walk below finds those in object streams
    if b"/JavaScript" in content or b"/JS " in content or b"/JS(" in content or b"/JS<" in content:
        raise refused("PDFs with JavaScript are refused.")
    try:
        with pdf_reading(limits):
            reader = PdfReader(io.BytesIO(content), strict=False)
            if reader.is_encrypted:
                raise refused("Encrypted PDFs are refused.")
            pages = len(reader.pages)
            if pages > limits.max_pages:
                raise refused(f"The PDF has {pages} pages; at most {limits.max_pages} are accepted.", "too-many-pages")
            _refuse_active_content(reader)
            return _invoice_xml(reader, limits)
    except DocumentError:
        raise
    except LimitReachedError:
        raise refused("The PDF inflates beyond the accepted size once decompressed.", "pdf-decompression-limit") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        # pypdf's limit errors (LimitReachedError…) land here too: a bomb is just an unreadable PDF to us
        raise refused(f"The PDF cannot be read safely: {type(exc).__name__}: {str(exc)[:200]}", "unreadable-pdf") from None


def pdf_reading(limits: PdfLimits):
    """Context manager: pypdf bounded by `limits` while reading (decompression bombs stop early)."""
    return apply_configuration(zlib_maximum_output_length=limits.max_decompressed_bytes,
                               lzw_maximum_output_length=limits.max_decompressed_bytes,
                               run_length_maximum_output_length=limits.max_decompressed_bytes,
                               array_based_stream_maximum_output_length=limits.max_decompressed_bytes,
                               maximum_declared_stream_length=limits.max_decompressed_bytes,
                               stream_decoding_work_maximum_length=limits.max_decompressed_bytes * 2)


def _refuse_active_content(reader: PdfReader) -> None:
    catalog = reader.trailer["/Root"].get_object()
    names = catalog.get("/Names")
    if names is not None and "/JavaScript" in names.get_object():
        raise refused("PDFs with JavaScript are refused.")
    places = [catalog]
    for page in reader.pages:
        places.append(page)
        places += [annotation.get_object() for annotation in (page.get("/Annots") or ArrayObject()).get_object()]
    for place in places:
        for key in ("/OpenAction", "/AA", "/A"):
            if key in place and _is_active(place[key]):
                raise refused("PDFs with JavaScript or other active content are refused.")


def _is_active(action: object, depth: int = 0) -> bool:
    """Whether an action (following its /Next chain) or an additional-actions dictionary runs something."""
    if depth > 20:
        return True  # an endless /Next chain is not something an invoice needs
    if isinstance(action, IndirectObject):
        action = action.get_object()
    if isinstance(action, ArrayObject):
        return any(_is_active(item, depth + 1) for item in action)
    if not isinstance(action, DictionaryObject):
        return False
    if "/S" not in action:  # an /AA dictionary: trigger → action
        return any(_is_active(value, depth + 1) for value in action.values())
    if action.get("/S") in _ACTIVE_ACTIONS or "/JS" in action:
        return True
    return "/Next" in action and _is_active(action["/Next"], depth + 1)


def _invoice_xml(reader: PdfReader, limits: PdfLimits) -> bytes | None:
    for attachment in reader.attachment_list:
        if attachment.name.lower() in INVOICE_XML_NAMES:
            xml = attachment.content
            if len(xml) > limits.max_xml_bytes:
                raise refused(f"The embedded XML exceeds {limits.max_xml_bytes} bytes.", "too-large")
            return xml
    return None

"""Batch PDF split: one PDF holding many invoices cut into one PDF per invoice by a tenant's rule
(a fixed page count, or a text anchor found in the pages' text), each part matched to its invoice
data by invoice number. Pure: bytes in, parts out.

PDFium (pypdfium2) reads the text and cuts the parts: pypdf's text extraction and writer took 90 %
of a split. PDFium inflates streams without a bound, so pypdf first inflates every non-image stream
within the PDF limits: a decompression bomb is refused before PDFium sees it."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pypdf import PdfReader
from pypdf.errors import LimitReachedError, PyPdfError
from pypdf.generic import StreamObject

from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.domain.documents.pdf import PdfLimits, pdf_reading, refused

if TYPE_CHECKING:
    import pypdfium2 as pdfium

_PDFIUM = threading.Lock()  # PDFium is not thread-safe: one document at a time per process

_TEXT_PER_PAGE = 20_000  # characters of a page searched by the rule's patterns
# a tenant's pattern that backtracks catastrophically must not hold a worker: each search has a time limit
SEARCH_SECONDS = 1.0


class SplitRule(BaseModel):
    """A tenant's split rule (saved with PUT /v1/split-rules/{name})."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["pages", "anchor"] = Field(description=(
        "`pages`: every `pages` pages is one invoice; `anchor`: an invoice starts on each page where `anchor` matches."))
    pages: int | None = Field(default=None, ge=1, le=1000, description="Pages per invoice (mode `pages`).")
    anchor: str | None = Field(default=None, min_length=1, max_length=500, description=(
        "Regular expression marking an invoice's first page (mode `anchor`); its group `number` (or else its first "
        "group) captures the invoice number, e.g. `Facture n° (?P<number>F-\\d+)`."))
    number_pattern: str | None = Field(default=None, min_length=1, max_length=500, description=(
        "Mode `pages`: regular expression whose group `number` (or first group) finds the invoice number in the "
        "part's text. Without it, a part matches the invoice whose number appears in its text."))

    @model_validator(mode="after")
    def _complete(self) -> SplitRule:
        if self.mode == "pages" and self.pages is None:
            raise ValueError("mode `pages` needs `pages`")
        if self.mode == "anchor" and self.anchor is None:
            raise ValueError("mode `anchor` needs `anchor`")
        for name in ("anchor", "number_pattern"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    compiled = regex.compile(pattern)
                except regex.error as exc:
                    raise ValueError(f"`{name}` is not a valid regular expression: {exc}") from None
                if name == "anchor" and compiled.groups == 0:
                    raise ValueError("`anchor` needs a group capturing the invoice number")
        return self


@dataclass(frozen=True)
class Part:
    """One invoice's pages: `first_page`/`last_page` 1-based in file `file`; `number` as the rule found it."""

    file: int
    first_page: int
    last_page: int
    number: str | None
    text: str
    pdf: bytes

    @property
    def location(self) -> dict:
        return {"file": self.file, "pages": [self.first_page, self.last_page]}


def split_pdf(content: bytes, rule: SplitRule, *, limits: PdfLimits, file: int = 0,
              read_text: bool = True) -> list[Part]:
    """The parts of one batch PDF, in page order (leading pages before the first anchor are a part too).
    A part's `text` is its first page's, which matching needs; `read_text=False` skips it in `pages` mode."""
    import pypdfium2 as pdfium  # on first use: a service that never splits does not carry PDFium (≈ 10 MB)

    _inflate_within_limits(content, limits)
    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(content)
        except pdfium.PdfiumError as exc:
            raise refused(f"The PDF cannot be read: {exc}", "unreadable-pdf") from None
        try:
            count = len(document)
            if count > limits.max_pages:
                raise refused(f"The PDF has {count} pages; at most {limits.max_pages} are accepted.", "too-many-pages")
            texts: list[str] = [""] * count
            if rule.mode == "pages":
                starts = list(range(0, count, rule.pages or 1))
                for start in starts if read_text else ():  # a part's number is on its first page
                    texts[start] = _page_text(document, start)
            else:
                anchor = regex.compile(rule.anchor or "")
                starts = []
                for index in range(count):
                    texts[index] = _page_text(document, index)
                    if _search(anchor, texts[index]):
                        starts.append(index)
                if not starts or starts[0] != 0:
                    starts.insert(0, 0)
            parts = []
            for position, start in enumerate(starts):
                end = starts[position + 1] if position + 1 < len(starts) else count
                text = texts[start]
                parts.append(Part(file=file, first_page=start + 1, last_page=end, number=_number(text, rule),
                                  text=text, pdf=_pages_pdf(document, start, end)))
            return parts
        finally:
            document.close()


def _inflate_within_limits(content: bytes, limits: PdfLimits) -> None:
    """Inflate every stream PDFium may inflate (content, fonts, forms: not images) with pypdf's limits on."""
    try:
        with pdf_reading(limits):
            reader = PdfReader(io.BytesIO(content), strict=False)
            for generation, objects in reader.xref.items():
                for number in objects:
                    try:
                        stream = reader.get_object(number)
                        if isinstance(stream, StreamObject) and stream.get("/Subtype") != "/Image":
                            stream.get_data()
                    except LimitReachedError:
                        raise
                    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, NotImplementedError):
                        continue  # a stream pypdf cannot decode: PDFium may read it or not, never unbounded
    except LimitReachedError:
        raise refused("The PDF inflates beyond the accepted size once decompressed.", "pdf-decompression-limit") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        raise refused(f"The PDF cannot be read safely: {type(exc).__name__}: {str(exc)[:200]}", "unreadable-pdf") from None


def _page_text(document: pdfium.PdfDocument, index: int) -> str:
    import pypdfium2 as pdfium

    try:
        page = document[index]
        try:
            textpage = page.get_textpage()
            try:
                return textpage.get_text_range().replace("\r\n", "\n")[:_TEXT_PER_PAGE]
            finally:
                textpage.close()
        finally:
            page.close()
    except pdfium.PdfiumError:  # a page whose text cannot be read has no anchor; it stays in the part before it
        return ""


def _number(text: str, rule: SplitRule) -> str | None:
    pattern = rule.anchor if rule.mode == "anchor" else rule.number_pattern
    if pattern is None:
        return None
    found = _search(regex.compile(pattern), text)
    if found is None:
        return None
    value = found.groupdict().get("number") or (found.group(1) if found.re.groups else found.group(0))
    return value.strip() if value else None


def _search(pattern: regex.Pattern, text: str) -> regex.Match | None:
    try:
        return pattern.search(text, timeout=SEARCH_SECONDS)
    except TimeoutError:
        raise DocumentError(422, "split-rule-too-slow", f"The split rule's pattern {pattern.pattern!r} takes over "
                                                        f"{SEARCH_SECONDS} s on a page: simplify it.") from None


def _pages_pdf(document: pdfium.PdfDocument, start: int, end: int) -> bytes:
    import pypdfium2 as pdfium

    part = pdfium.PdfDocument.new()
    try:
        part.import_pages(document, list(range(start, end)))
        out = io.BytesIO()
        part.save(out)
    finally:
        part.close()
    return _deterministic(out.getvalue())


_CREATED = regex.compile(rb"(/CreationDate\(D:)[0-9]{14}")
_FILE_ID = regex.compile(rb"/ID\s*\[\s*<([0-9A-Fa-f]{32})>\s*<([0-9A-Fa-f]{32})>\s*\]")


def _deterministic(pdf: bytes) -> bytes:
    """The same pages give the same bytes (a retried batch stores the same blobs): PDFium stamps a new document
    with the time and a random /ID; both are replaced in place (same lengths, so the xref offsets hold)."""
    pdf = _CREATED.sub(rb"\g<1>20000101000000", pdf, count=1)
    tail = max(0, len(pdf) - 1024)  # the trailer
    found = _FILE_ID.search(pdf, tail)
    if found is None:
        return pdf
    blank = pdf[:found.start(1)] + b"0" * 32 + pdf[found.end(1):found.start(2)] + b"0" * 32 + pdf[found.end(2):]
    digest = hashlib.md5(blank, usedforsecurity=False).hexdigest().upper().encode()
    return pdf[:found.start(1)] + digest + pdf[found.end(1):found.start(2)] + digest + pdf[found.end(2):]


def match_parts(parts: Iterable[Part], numbers: Iterable[str]) -> tuple[dict[str, Part], list[Part]]:
    """Each invoice number's part, and the parts matching no number (or a number matched twice).
    A part without a number from the rule matches the one invoice number found in its text."""
    wanted = {number.strip(): number for number in numbers}
    matched: dict[str, Part] = {}
    unmatched: list[Part] = []
    for part in parts:
        number = part.number if part.number is not None else _number_in_text(part.text, wanted)
        if number is None or number not in wanted or wanted[number] in matched:
            unmatched.append(part)
        else:
            matched[wanted[number]] = part
    return matched, unmatched


def _number_in_text(text: str, wanted: dict[str, str]) -> str | None:
    """The one wanted number standing as a word of the text (None if none or several)."""
    found = {word.strip(".,;:()[]") for word in text.split()} & wanted.keys()
    return found.pop() if len(found) == 1 else None

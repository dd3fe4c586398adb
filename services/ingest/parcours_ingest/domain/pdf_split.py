"""Batch PDF split: one PDF holding many invoices cut into one PDF per invoice by a tenant's rule
(a fixed page count, or a text anchor found with pypdf's text extraction), each part matched to
its invoice data by invoice number. Pure: bytes in, parts out."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pypdf import PdfReader, PdfWriter

from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.domain.documents.pdf import PdfLimits, pdf_reading

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
    with pdf_reading(limits):
        reader = PdfReader(io.BytesIO(content), strict=False)
        count = len(reader.pages)
        texts: list[str] = [""] * count
        if rule.mode == "pages":
            starts = list(range(0, count, rule.pages or 1))
            for start in starts if read_text else ():  # a part's number is on its first page
                texts[start] = _page_text(reader, start)
        else:
            anchor = regex.compile(rule.anchor or "")
            starts = []
            for index in range(count):
                texts[index] = _page_text(reader, index)
                if _search(anchor, texts[index]):
                    starts.append(index)
            if not starts or starts[0] != 0:
                starts.insert(0, 0)
        parts = []
        for position, start in enumerate(starts):
            end = starts[position + 1] if position + 1 < len(starts) else count
            text = texts[start]
            parts.append(Part(file=file, first_page=start + 1, last_page=end, number=_number(text, rule), text=text,
                              pdf=_pages_pdf(reader, start, end)))
        return parts


def _page_text(reader: PdfReader, index: int) -> str:
    try:
        return reader.pages[index].extract_text()[:_TEXT_PER_PAGE]
    except Exception:  # a page whose text cannot be read has no anchor; it stays in the part before it
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


def _pages_pdf(reader: PdfReader, start: int, end: int) -> bytes:
    writer = PdfWriter()
    for index in range(start, end):
        writer.add_page(reader.pages[index])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


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

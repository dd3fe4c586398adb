"""Invoice documents in the formats ERPs send (UBL 2.1, UN/CEFACT CII D16B, Factur-X PDF),
read into the same data as the JSON invoice. Pure: bytes in, values or DocumentError out."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    """One thing wrong at one place of a document: `xpath` in the document sent, `field` in our model."""

    xpath: str
    detail: str
    code: str
    field: tuple[str | int, ...] | None = None
    line: int | None = None
    expected: str | None = None  # arithmetic mismatches: what the other amounts imply, and what was given
    given: str | None = None


@dataclass
class DocumentError(Exception):
    """A document refused as a whole (status 400/415/422), with the issues found."""

    status: int
    slug: str
    detail: str
    issues: list[Issue] = field(default_factory=list)

    def __str__(self) -> str:
        return self.detail

"""The items of a batch, whatever it came as: each is one invoice's data (and PDF) with where it was
in the file, or an outcome known before any check (a refused cell, a PDF part matching no invoice).
Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parcours_ingest.domain.csv_mapping import MappingProfile, RowGroup, cell_of
from parcours_ingest.domain.pdf_split import Part, match_parts


@dataclass
class Item:
    """`location`: {"index": i} in a JSON array, {"rows": […]} in a table, plus {"file", "pages"} for a PDF part."""

    seq: int
    location: dict[str, Any]
    payload: Any = None
    pdf: bytes | None = None
    # known before checking: the item is refused with this code, detail and errors
    code: str | None = None
    detail: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    status: str = "rejected"  # the status of an item refused before checking (`unmatched` for a stray PDF part)

    @property
    def number(self) -> str | None:
        number = self.payload.get("number") if isinstance(self.payload, dict) else None
        return str(number)[:64] if number is not None else None


def json_items(payloads: list[Any]) -> list[Item]:
    return [Item(seq=index, location={"index": index}, payload=payload) for index, payload in enumerate(payloads)]


def table_items(groups: list[RowGroup]) -> list[Item]:
    items = []
    for seq, group in enumerate(groups):
        item = Item(seq=seq, location={"rows": group.rows}, payload=group.payload)
        if group.cell_errors:
            item.code, item.detail, item.errors = ("formula-like-cell", "Cells that could run as spreadsheet "
                                                   "formulas are refused.", group.cell_errors)
        items.append(item)
    return items


def split_items(data: list[Item], parts: list[Part]) -> list[Item]:
    """The data items, each with its PDF part, then the parts no invoice matched (status `unmatched`)."""
    numbers = [item.number for item in data if item.number is not None]
    matched, unmatched = match_parts(parts, numbers)
    items = []
    for item in data:
        part = matched.get(item.number) if item.number is not None else None
        if part is not None:
            item.pdf = part.pdf
            item.location = {**item.location, **part.location}
        elif item.code is None:
            item.code, item.detail = "missing-pdf-part", "No part of the PDF was found for this invoice."
        items.append(item)
    for part in unmatched:
        found = f" (invoice number {part.number!r} is not in the data)" if part.number else ""
        items.append(Item(seq=len(items), location=part.location, pdf=part.pdf, status="unmatched",
                          code="unmatched-part", detail=f"No invoice data matches pages {part.first_page}–"
                                                        f"{part.last_page}{found}; the part is kept with the batch."))
        if part.number:
            items[-1].payload = {"number": part.number}
    return items


def located(errors: list[dict[str, Any]], item: Item, profile: MappingProfile | None) -> list[dict[str, Any]]:
    """The errors of a table item, each with the row and column of the cell it is about."""
    rows = item.location.get("rows")
    if profile is None or not rows:
        return errors
    return [{**cell_of(error.get("pointer", ""), rows, profile), **error} if "row" not in error else error
            for error in errors]

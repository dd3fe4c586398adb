"""CSV and XLSX files read into tables of cells: `(row number, cells)` pairs from the header row on.
XLSX through openpyxl in read-only mode; formulas are never evaluated: a workbook with a formula or
with macros is refused, as is a zip that would inflate beyond the limit."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from parcours_ingest.domain.csv_mapping import MappingProfile, TableError

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MACRO_MEDIA_TYPES = ("application/vnd.ms-excel.sheet.macroenabled.12", "application/vnd.ms-excel")
_FORMULAS_LISTED = 20

Table = list[tuple[int, list[Any]]]


def read_csv(raw: bytes, profile: MappingProfile, *, max_rows: int) -> Table:
    """The rows of a CSV file; TableError if it is not text in the profile's encoding."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode(profile.encoding)
    except UnicodeDecodeError as exc:
        raise TableError(f"The file is not valid {profile.encoding} text (byte {exc.start}).",
                         slug="malformed-csv", status=400) from None
    if "\x00" in text:
        raise TableError("The file is not text (it contains NUL bytes).", slug="malformed-csv", status=400)
    delimiter = profile.delimiter or _guess_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    table: Table = []
    try:
        for number, cells in enumerate(reader, 1):
            if number >= profile.header_row:
                table.append((number, cells))
            if len(table) > max_rows + 1:
                raise TableError(f"The file has more than {max_rows} rows.", slug="too-many-rows", status=413)
    except csv.Error as exc:
        raise TableError(f"The CSV cannot be read: {exc}", slug="malformed-csv", status=400) from None
    return table


def _guess_delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    return max((";", ",", "\t", "|"), key=header.count)


def read_xlsx(raw: bytes, profile: MappingProfile, *, max_rows: int, max_inflated_bytes: int) -> Table:
    """The rows of the profile's sheet (the first one by default); TableError for macros, formulas,
    a zip bomb or a file that is no workbook."""
    _check_package(raw, max_inflated_bytes=max_inflated_bytes)
    from openpyxl import load_workbook  # on first use: ≈ 18 MB a service without XLSX does not carry

    try:
        workbook = load_workbook(io.BytesIO(raw), read_only=True, data_only=False, keep_vba=False, keep_links=False)
    except Exception as exc:  # openpyxl raises anything from KeyError to InvalidFileException on a broken package
        raise TableError(f"The file is not a readable XLSX workbook: {type(exc).__name__}", slug="malformed-xlsx",
                         status=400) from None
    try:
        if profile.sheet is not None and profile.sheet not in workbook.sheetnames:
            raise TableError(f"The workbook has no sheet {profile.sheet!r}.", [
                {"sheet": profile.sheet, "detail": f"sheets: {', '.join(workbook.sheetnames)}", "code": "missing-sheet"}],
                slug="missing-sheet")
        sheet = workbook[profile.sheet] if profile.sheet is not None else workbook.worksheets[0]
        table: Table = []
        formulas: list[str] = []
        for cells in sheet.iter_rows(min_row=profile.header_row):
            cells = [cell for cell in cells if getattr(cell, "row", None) is not None]
            if not cells:
                continue
            formulas += [cell.coordinate for cell in cells if cell.data_type == "f"]
            table.append((cells[0].row, [cell.value for cell in cells]))
            if len(table) > max_rows + 1:
                raise TableError(f"The sheet has more than {max_rows} rows.", slug="too-many-rows", status=413)
    finally:
        workbook.close()
    if formulas:
        raise TableError("Workbooks with formulas are refused: Parcours never evaluates them. Paste the values instead.",
                         [{"cell": cell, "detail": "formula", "code": "formula"} for cell in formulas[:_FORMULAS_LISTED]],
                         slug="spreadsheet-with-formulas")
    return table


def _check_package(raw: bytes, *, max_inflated_bytes: int) -> None:
    try:
        package = zipfile.ZipFile(io.BytesIO(raw))
        entries = package.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise TableError("The file is not an XLSX workbook (not a zip package).", slug="malformed-xlsx",
                         status=400) from None
    names = {entry.filename.lower() for entry in entries}
    if any(name.endswith("vbaproject.bin") for name in names) or _declares_macros(package, names):
        raise TableError("Macro-enabled workbooks are refused.", slug="spreadsheet-with-macros")
    if sum(entry.file_size for entry in entries) > max_inflated_bytes:
        raise TableError(f"The workbook inflates beyond {max_inflated_bytes} bytes.", slug="xlsx-decompression-limit",
                         status=413)


def _declares_macros(package: zipfile.ZipFile, names: set[str]) -> bool:
    if "[content_types].xml" not in names:
        return False
    entry = next(e for e in package.infolist() if e.filename.lower() == "[content_types].xml")
    if entry.file_size > 1024 * 1024:
        return True  # a content-types list this large is no ordinary workbook
    return b"macroenabled" in package.read(entry).lower()

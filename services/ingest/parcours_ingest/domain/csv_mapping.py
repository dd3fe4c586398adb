"""Column-mapping profiles: how a tenant's CSV or XLSX export (one row per invoice line, the
invoice's own columns repeated) becomes invoices of the Parcours model. Pure: a table of cells in,
invoice payloads out, each with the rows it came from so that errors point at a row and a column."""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from parcours_ingest.domain.invoice import InvoiceContent

LINES = "lines"
# Cells a spreadsheet program could run as a formula (CSV injection): refused unless they are a plain number.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def _scalar(annotation: Any) -> bool:
    """Whether a model field holds one value (not a list, not a nested part)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_scalar(arg) for arg in args if arg is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:
        return _scalar(args[0])
    if typing.get_origin(annotation) is list:
        return False
    return not (isinstance(annotation, type) and issubclass(annotation, BaseModel))


def _targets() -> tuple[dict[str, bool], dict[str, Any]]:
    """Every field a column can fill ("number", "buyer.name", "lines.quantity"…), whether it is
    required, and its annotation (to know which ones hold amounts and dates)."""
    required: dict[str, bool] = {}
    kinds: dict[str, Any] = {}
    for name, info in InvoiceContent.model_fields.items():
        annotation = info.annotation
        if name == LINES:
            part = typing.get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            part = annotation
        else:
            if _scalar(annotation):
                required[name], kinds[name] = info.is_required(), annotation
            continue
        for sub, sub_info in part.model_fields.items():
            if _scalar(sub_info.annotation):
                required[f"{name}.{sub}"] = info.is_required() and sub_info.is_required()
                kinds[f"{name}.{sub}"] = sub_info.annotation
    return required, kinds


TARGETS, _KINDS = _targets()
DATE_TARGETS = frozenset(t for t in TARGETS if "date" in t.rsplit(".", 1)[-1])
AMOUNT_TARGETS = frozenset(t for t, kind in _KINDS.items() if "Decimal" in repr(kind))


class MappingProfile(BaseModel):
    """A tenant's column-mapping profile (saved with PUT /v1/mapping-profiles/{name})."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    columns: dict[str, str] = Field(min_length=1, max_length=200, description=(
        "Column header → invoice field: `number`, `issue_date`, `seller.name`, `buyer.customer_ref`, "
        "`totals.total_incl_tax`, `lines.quantity`… Rows with the same `number` one after the other are one "
        "invoice; `lines.*` columns give one line per row, the others are read from the invoice's first row."))
    defaults: dict[str, str] = Field(default_factory=dict, max_length=100, description=(
        "Invoice field → value used when no column gives it (e.g. `currency`: `EUR`, `seller.name`)."))
    delimiter: Literal[",", ";", "\t", "|"] | None = Field(default=None, description="CSV delimiter; guessed if absent.")
    encoding: Literal["utf-8", "cp1252", "latin-1"] = Field(default="utf-8",
                                                            description="CSV encoding (a UTF-8 BOM is skipped).")
    decimal_comma: bool = Field(default=False, description="Amounts written 1 234,56 (French Excel exports).")
    date_format: str = Field(default="%Y-%m-%d", min_length=2, max_length=40,
                             description="strftime format of the date columns, e.g. %d/%m/%Y.")
    header_row: int = Field(default=1, ge=1, le=100, description="Row number of the column headers.")
    sheet: str | None = Field(default=None, max_length=100, description="XLSX sheet name; the first sheet if absent.")


@dataclass(frozen=True)
class ProfileIssue:
    path: tuple[str, ...]
    detail: str
    code: str


def profile_issues(profile: MappingProfile) -> list[ProfileIssue]:
    """What makes the profile unusable: unknown or twice-mapped target fields, required fields nobody fills."""
    issues: list[ProfileIssue] = []
    seen: dict[str, str] = {}
    for column, target in profile.columns.items():
        if target not in TARGETS:
            issues.append(ProfileIssue(("columns", column), f"unknown target field {target!r}", "unknown-field"))
        elif target in seen:
            issues.append(ProfileIssue(("columns", column), f"{target!r} is already mapped from column {seen[target]!r}",
                                       "mapped-twice"))
        else:
            seen[target] = column
    for target in profile.defaults:
        if target not in TARGETS:
            issues.append(ProfileIssue(("defaults", target), f"unknown target field {target!r}", "unknown-field"))
    for target, required in TARGETS.items():
        if required and target not in seen and target not in profile.defaults:
            issues.append(ProfileIssue(("columns",), f"no column (nor default) gives the required field {target!r}",
                                       "required-field-unmapped"))
    try:
        datetime.strptime(datetime(2026, 1, 31).strftime(profile.date_format), profile.date_format)
    except ValueError:
        issues.append(ProfileIssue(("date_format",), f"{profile.date_format!r} cannot read back a date", "invalid"))
    return issues


@dataclass
class RowGroup:
    """One invoice read from consecutive rows: `rows` as numbered in the file (header row = its number),
    one per line; `cell_errors` for cells refused before validation."""

    rows: list[int]
    payload: dict[str, Any]
    cell_errors: list[dict[str, Any]] = field(default_factory=list)


class TableError(ValueError):
    """The file cannot be read as a table with this profile (a mapped column missing, a formula…)."""

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, *, slug: str = "unreadable-table",
                 status: int = 422):
        super().__init__(detail)
        self.detail, self.errors, self.slug, self.status = detail, errors or [], slug, status


def group_rows(table: list[tuple[int, list[Any]]], profile: MappingProfile) -> list[RowGroup]:
    """The invoices of a table: `(row number, cells)` pairs, the first one the header row."""
    if not table:
        raise TableError("The file has no header row.", [{"row": profile.header_row, "detail": "missing"}],
                         slug="missing-columns")
    _, header = table[0]
    names = [str(cell).strip() if cell is not None else "" for cell in header]
    missing = [column for column in profile.columns if column not in names]
    if missing:
        raise TableError("Columns of the mapping profile are missing from the file.",
                         [{"column": column, "detail": "column not found in the header row", "code": "missing-column"}
                          for column in missing], slug="missing-columns")
    index = {column: names.index(column) for column in profile.columns}
    number_column = next((c for c, t in profile.columns.items() if t == "number"), None)
    groups: list[RowGroup] = []
    current_number: object = object()
    for row_number, cells in table[1:]:
        if all(cell is None or str(cell).strip() == "" for cell in cells):
            continue
        values = {column: cells[i] if i < len(cells) else None for column, i in index.items()}
        number = _text(values[number_column]) if number_column else None
        if not groups or number_column is None or number != current_number:
            groups.append(_start_group(row_number, values, profile))
            current_number = number
        else:
            groups[-1].rows.append(row_number)
        group = groups[-1]
        line: dict[str, Any] = {target.split(".", 1)[1]: value for target, value in profile.defaults.items()
                                if target.startswith(LINES + ".")}
        for column, target in profile.columns.items():
            if target.startswith(LINES + ".") or len(group.rows) == 1:
                value = _cell(values[column], target, profile, row_number, column, group.cell_errors)
                if target.startswith(LINES + "."):
                    if value is not None:
                        line[target.split(".", 1)[1]] = value
                elif value is not None:
                    _put(group.payload, target, value)
        group.payload.setdefault(LINES, []).append(line)
    return groups


def _start_group(row_number: int, values: dict[str, Any], profile: MappingProfile) -> RowGroup:
    payload: dict[str, Any] = {}
    for target, value in profile.defaults.items():
        if not target.startswith(LINES + "."):
            _put(payload, target, value)
    return RowGroup(rows=[row_number], payload=payload)


def _put(payload: dict[str, Any], target: str, value: Any) -> None:
    head, _, rest = target.partition(".")
    if rest:
        payload.setdefault(head, {})[rest] = value
    else:
        payload[head] = value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _cell(raw: Any, target: str, profile: MappingProfile, row: int, column: str,
          errors: list[dict[str, Any]]) -> Any:
    """A cell as the model wants it: dates ISO, amounts as decimal strings; None when empty.
    A formula-like text cell is recorded in `errors` and dropped."""
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, int | float | Decimal):
        return str(Decimal(str(raw))) if target in AMOUNT_TARGETS else _number_text(raw)
    text = _text(raw)
    if text is None:
        return None
    if text.startswith(_FORMULA_PREFIXES) and not _PLAIN_NUMBER.match(text):
        errors.append({"row": row, "column": column, "detail": "a cell starting with =, +, -, @ or a control character "
                       "could run as a formula in a spreadsheet; refused", "code": "formula-like-cell"})
        return None
    if target in AMOUNT_TARGETS:
        return _decimal_text(text, decimal_comma=profile.decimal_comma)
    if target in DATE_TARGETS:
        try:
            return datetime.strptime(text, profile.date_format).date().isoformat()
        except ValueError:
            return text  # left as written: the invoice model says what is wrong with it, at this cell
    return text


def _number_text(value: int | float | Decimal) -> str:
    """A number typed into a text field (an invoice number such as 1042): without a trailing .0."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _decimal_text(text: str, *, decimal_comma: bool) -> str:
    compact = text.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if decimal_comma:
        compact = compact.replace(".", "").replace(",", ".")
    try:
        Decimal(compact)
    except InvalidOperation:
        return text
    return compact


def cell_of(pointer: str, rows: list[int], profile: MappingProfile) -> dict[str, Any]:
    """Where an error's JSON pointer into the invoice read from `rows` lies in the file: `{"row": …, "column": …}`
    (column None when the value came from the profile's defaults or from no column at all)."""
    parts = [part for part in pointer.split("/")[1:] if part]
    row = rows[0]
    if len(parts) >= 2 and parts[0] == LINES and parts[1].isdigit():
        position = int(parts[1])
        row = rows[position] if position < len(rows) else row
        parts = [LINES] + parts[2:]
    target = ".".join(parts[:2])
    column = next((c for c, t in profile.columns.items() if t == target), None)
    return {"row": row, "column": column}

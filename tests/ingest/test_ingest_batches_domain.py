"""The pure parts of batches: reading tables with a mapping profile (options, grouping, cell
errors, where an error lies), and matching PDF parts to invoice numbers."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import Workbook

from parcours_ingest.domain.csv_mapping import MappingProfile, TableError, cell_of, group_rows, profile_issues
from parcours_ingest.domain.pdf_split import Part, match_parts
from parcours_ingest.domain.spreadsheets import read_csv, read_xlsx

COLUMNS = {"Num": "number", "Qty": "lines.quantity", "Label": "lines.description", "Total": "totals.total_incl_tax"}


def profile(**options) -> MappingProfile:
    return MappingProfile.model_validate({"columns": COLUMNS, **options})


def test_rows_group_into_invoices_one_after_the_other():
    table = [(1, ["Num", "Qty", "Label", "Total"]), (2, ["A", "1", "x", "10"]), (3, ["A", "2", "y", "10"]),
             (4, ["", "", "", ""]), (5, ["B", "1", "z", "5"]), (6, ["A", "1", "again", "1"])]
    groups = group_rows(table, profile(defaults={"lines.vat_rate": "20", "currency": "EUR"}))
    assert [(g.rows, g.payload["number"]) for g in groups] == [([2, 3], "A"), ([5], "B"), ([6], "A")]
    assert groups[0].payload["lines"] == [{"vat_rate": "20", "quantity": "1", "description": "x"},
                                          {"vat_rate": "20", "quantity": "2", "description": "y"}]
    assert groups[0].payload["currency"] == "EUR" and groups[0].payload["totals"] == {"total_incl_tax": "10"}


def test_csv_options_header_row_encoding_decimal_comma_and_dates():
    raw = "Export du 02/11/2026\nNum;Qty;Label;Total;Date\nÉ-1;1,5;Café;1 234,50;02/11/2026\n".encode("cp1252")
    options = profile(encoding="cp1252", header_row=2, decimal_comma=True, date_format="%d/%m/%Y",
                      columns={**COLUMNS, "Date": "issue_date"})
    [group] = group_rows(read_csv(raw, options, max_rows=10), options)
    assert group.rows == [3]
    assert group.payload["number"] == "É-1" and group.payload["issue_date"] == "2026-11-02"
    assert group.payload["lines"] == [{"quantity": "1.5", "description": "Café"}]
    assert group.payload["totals"] == {"total_incl_tax": "1234.50"}


def test_formula_like_cells_are_recorded_with_their_row_and_column_but_numbers_pass():
    table = [(1, ["Num", "Qty", "Label", "Total"]), (2, ["A", "-1", "@SUM(A1)", "+12.5"])]
    [group] = group_rows(table, profile())
    assert group.payload["lines"] == [{"quantity": "-1"}] and group.payload["totals"] == {"total_incl_tax": "+12.5"}
    assert [(e["row"], e["column"], e["code"]) for e in group.cell_errors] == [(2, "Label", "formula-like-cell")]


def test_where_an_error_lies():
    rows, options = [7, 8, 9], profile()
    assert cell_of("/lines/2/quantity", rows, options) == {"row": 9, "column": "Qty"}
    assert cell_of("/totals/total_incl_tax", rows, options) == {"row": 7, "column": "Total"}
    assert cell_of("/currency", rows, options) == {"row": 7, "column": None}  # from no column


def test_missing_columns_and_profile_issues():
    with pytest.raises(TableError) as refused:
        group_rows([(1, ["Num", "Qty"])], profile())
    assert [e["column"] for e in refused.value.errors] == ["Label", "Total"]
    issues = profile_issues(MappingProfile.model_validate({"columns": {"a": "number", "b": "number"},
                                                           "defaults": {"nope": "1"}, "date_format": "%Q"}))
    found = {(issue.path, issue.code) for issue in issues}
    assert {(("columns", "b"), "mapped-twice"), (("defaults", "nope"), "unknown-field"),
            (("date_format",), "invalid")} <= found
    assert (("columns",), "required-field-unmapped") in found


def test_xlsx_sheet_choice_and_typed_cells():
    workbook = Workbook()
    workbook.active.title = "Notes"
    sheet = workbook.create_sheet("Factures")
    sheet.append(["Num", "Qty", "Label", "Total"])
    sheet.append([1042, 2.5, "Conseil", 120.1])
    sheet.append(["B", 1, "Frais", datetime(2026, 11, 2)])
    out = io.BytesIO()
    workbook.save(out)
    options = profile(sheet="Factures")
    groups = group_rows(read_xlsx(out.getvalue(), options, max_rows=10, max_inflated_bytes=10**7), options)
    assert groups[0].payload["number"] == "1042"
    assert groups[0].payload["lines"] == [{"quantity": "2.5", "description": "Conseil"}]
    assert groups[0].payload["totals"] == {"total_incl_tax": "120.1"}
    assert groups[1].payload["totals"] == {"total_incl_tax": "2026-11-02"}  # the model will refuse it, at its cell
    with pytest.raises(TableError) as missing:
        read_xlsx(out.getvalue(), profile(sheet="Ventes"), max_rows=10, max_inflated_bytes=10**7)
    assert missing.value.slug == "missing-sheet"


def test_parts_match_by_number_once_and_the_rest_is_unmatched():
    def part(first: int, number: str | None, text: str = "") -> Part:
        return Part(file=0, first_page=first, last_page=first, number=number, text=text, pdf=b"")

    parts = [part(1, "F-1"), part(2, None, "Invoice F-2, page 1"), part(3, "F-1"), part(4, None, "F-1 and F-2"),
             part(5, "F-9")]
    matched, unmatched = match_parts(parts, ["F-1", "F-2", "F-3"])
    assert {number: p.first_page for number, p in matched.items()} == {"F-1": 1, "F-2": 2}
    assert [p.first_page for p in unmatched] == [3, 4, 5]  # taken twice, ambiguous, unknown number

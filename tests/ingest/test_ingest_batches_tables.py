"""CSV and XLSX batches read with a tenant's column-mapping profile: one row per invoice line, errors
reported with their row and column; profiles checked when saved; formulas, macros and formula-like
cells refused."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import httpx
from openpyxl import Workbook

from parcours_ingest.store.batch_models import BatchRow
from parcours_ingest.store.models import InvoiceRow


PROBLEM_JSON = "application/problem+json"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROFILE = {
    "columns": {"N° facture": "number", "Date": "issue_date", "Échéance": "due_date", "Code client": "buyer.customer_ref",
                "Client": "buyer.name", "Désignation": "lines.description", "Qté": "lines.quantity",
                "PU HT": "lines.unit_price", "TVA %": "lines.vat_rate", "Montant HT": "lines.line_total_excl_tax",
                "Total HT": "totals.total_excl_tax", "Total TVA": "totals.total_tax", "Total TTC": "totals.total_incl_tax"},
    "defaults": {"currency": "EUR", "seller.name": "ACME SAS"},
    "delimiter": ";", "decimal_comma": True, "date_format": "%d/%m/%Y",
}
HEADER = list(PROFILE["columns"])
# two lines: 2 × 500,00 + 1 × 19,99 = 1 019,99 HT; VAT 20 % = 204,00; 1 223,99 TTC
ROWS = [
    ["T-1", "02/11/2026", "02/12/2026", "CUST-42", "Dupont SARL", "Conseil", "2", "500,00", "20", "1 000,00",
     "1 019,99", "204,00", "1 223,99"],
    ["T-1", "02/11/2026", "02/12/2026", "CUST-42", "Dupont SARL", "Frais", "1", "19,99", "20", "19,99",
     "1 019,99", "204,00", "1 223,99"],
    ["T-2", "03/11/2026", "03/12/2026", "CUST-7", "Martin SA", "Audit", "deux", "100,00", "20", "200,00",
     "200,00", "40,00", "240,00"],
    ["T-3", "03/11/2026", "03/12/2026", "CUST-7", "Martin SA", "=HYPERLINK(\"http://evil\")", "1", "10,00", "20",
     "10,00", "10,00", "2,00", "12,00"],
]


def csv_of(rows, header=HEADER) -> bytes:
    return "\n".join(";".join(row) for row in [header, *rows]).encode()


async def save_profile(client, headers, name="erp-fr", profile=PROFILE):
    response = await client.put(f"/v1/mapping-profiles/{name}", json=profile, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response


async def test_csv_batch_with_a_french_profile(ingest, client, acme, finished_batch):
    assert (await save_profile(client, acme)).status_code == 201
    response = await client.post("/v1/batches", params={"profile": "erp-fr", "filename": "export.csv"},
                                 content=csv_of(ROWS), headers={**acme, "Content-Type": "text/csv; charset=utf-8"})
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "csv" and response.json()["total_items"] == 3

    batch = await finished_batch(client, acme, response.json()["batch_id"])
    assert (batch["status"], batch["filename"], batch["accepted_items"], batch["rejected_items"]) == (
        "done", "export.csv", 1, 2)
    first, second, third = batch["items"]
    assert (first["status"], first["number"], first["location"]) == ("accepted", "T-1", {"rows": [2, 3]})
    stored = (await client.get(f"/v1/invoices/{first['invoice_id']}", headers=acme)).json()
    assert (stored["issue_date"], stored["currency"], stored["seller"]["name"]) == ("2026-11-02", "EUR", "ACME SAS")
    assert [(line["description"], line["line_total_excl_tax"]) for line in stored["lines"]] == [
        ("Conseil", "1000.00"), ("Frais", "19.99")]
    assert stored["totals"]["total_incl_tax"] == "1223.99"

    assert second["status"] == "rejected" and second["location"] == {"rows": [4]}
    [error] = second["errors"]
    assert (error["pointer"], error["row"], error["column"]) == ("/lines/0/quantity", 4, "Qté")
    assert third["code"] == "formula-like-cell"
    assert third["errors"] == [{"row": 5, "column": "Désignation", "code": "formula-like-cell",
                                "detail": third["errors"][0]["detail"]}]


async def test_xlsx_batch_reads_typed_cells(ingest, client, acme, finished_batch, count_rows):
    await save_profile(client, acme)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet.append(["X-1", date(2026, 11, 2), date(2026, 12, 2), "CUST-42", "Dupont SARL", "Conseil", 2, 500, 20, 1000,
                  1019.99, 204, 1223.99])
    sheet.append(["X-1", date(2026, 11, 2), date(2026, 12, 2), "CUST-42", "Dupont SARL", "Frais", 1, 19.99, 20, 19.99,
                  1019.99, 204, 1223.99])
    sheet.append([1042, date(2026, 11, 2), date(2026, 12, 2), "CUST-42", "Dupont SARL", "Remise", 1, 10, 20, 10,
                  10, 2, 12])
    response = await client.post("/v1/batches", params={"profile": "erp-fr"}, content=xlsx_bytes(workbook),
                                 headers={**acme, "Content-Type": XLSX})
    assert response.status_code == 202, response.text
    batch = await finished_batch(client, acme, response.json()["batch_id"])
    assert [(i["status"], i["number"], i["location"]) for i in batch["items"]] == [
        ("accepted", "X-1", {"rows": [2, 3]}), ("accepted", "1042", {"rows": [4]})]
    assert await count_rows(ingest, InvoiceRow) == 2


def xlsx_bytes(workbook: Workbook) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def test_spreadsheets_with_formulas_or_macros_and_unreadable_files_are_refused(ingest, client, acme, count_rows):
    await save_profile(client, acme)
    with_formula = Workbook()
    with_formula.active.append(HEADER)
    with_formula.active.append(["F-1", "02/11/2026", "02/12/2026", "C", "N", "D", 1, 10, 20, "=G2*H2", 10, 2, 12])
    plain = xlsx_bytes(Workbook())
    with_macros = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain)) as source, zipfile.ZipFile(with_macros, "w") as target:
        for entry in source.infolist():
            target.writestr(entry, source.read(entry))
        target.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro")
    cases = [
        (XLSX, xlsx_bytes(with_formula), 422, "spreadsheet-with-formulas"),
        (XLSX, with_macros.getvalue(), 422, "spreadsheet-with-macros"),
        (XLSX, b"not a zip", 400, "malformed-xlsx"),
        ("text/csv", csv_of(ROWS[:1], header=HEADER[1:]), 422, "missing-columns"),
        ("text/csv", b"\xff\xfe broken ; utf-8", 400, "malformed-csv"),
    ]
    for media_type, content, status, slug in cases:
        response = await client.post("/v1/batches", params={"profile": "erp-fr"}, content=content,
                                     headers={**acme, "Content-Type": media_type})
        assert response.status_code == status, (slug, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["type"].endswith("/" + slug), response.json()
        if slug == "spreadsheet-with-formulas":
            assert response.json()["errors"] == [{"cell": "J2", "detail": "formula", "code": "formula"}]
        if slug == "missing-columns":
            assert response.json()["errors"][0]["column"] == "N° facture"
    unknown = await client.post("/v1/batches", params={"profile": "nope"}, content=csv_of(ROWS),
                                headers={**acme, "Content-Type": "text/csv"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [{"pointer": "/profile", "detail": "no mapping profile 'nope'",
                                         "code": "unknown", "in": "query"}]
    assert await count_rows(ingest, BatchRow) == 0


async def test_mapping_profiles_are_checked_saved_listed_and_deleted(ingest, client, acme, tenant_key):
    bad = {**PROFILE, "columns": {**PROFILE["columns"], "Montant": "totals.grand_total"}}
    del bad["columns"]["Client"]
    response = await client.put("/v1/mapping-profiles/bad", json=bad, headers=acme)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-mapping-profile")
    assert {(e["pointer"], e["code"]) for e in response.json()["errors"]} == {
        ("/columns/Montant", "unknown-field"), ("/columns", "required-field-unmapped")}
    schema_error = await client.put("/v1/mapping-profiles/bad", json={**PROFILE, "delimiter": "#"}, headers=acme)
    assert schema_error.status_code == 422 and schema_error.json()["errors"][0]["pointer"] == "/delimiter"
    bad_name = await client.put("/v1/mapping-profiles/a%20b", json=PROFILE, headers=acme)
    assert bad_name.status_code == 422

    assert (await save_profile(client, acme)).status_code == 201
    replaced = await save_profile(client, acme, profile={**PROFILE, "delimiter": ","})
    assert replaced.status_code == 200 and replaced.json()["delimiter"] == ","
    listed = (await client.get("/v1/mapping-profiles", headers=acme)).json()
    assert [(p["name"], p["delimiter"]) for p in listed] == [("erp-fr", ",")]
    other = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='globex', tenant_name='Globex')}"}
    assert (await client.get("/v1/mapping-profiles/erp-fr", headers=other)).status_code == 404
    assert (await client.get("/v1/mapping-profiles", headers=other)).json() == []
    assert (await client.delete("/v1/mapping-profiles/erp-fr", headers=acme)).status_code == 204
    assert (await client.get("/v1/mapping-profiles/erp-fr", headers=acme)).status_code == 404
    assert (await client.delete("/v1/mapping-profiles/erp-fr", headers=acme)).status_code == 404


async def test_a_workbook_inflating_beyond_the_limit_is_refused(run_service, tenant_key, count_rows):
    ingest = await run_service("ingest", max_batch_bytes=1024 * 1024)
    headers = {"Authorization": f"Bearer {await tenant_key(ingest)}"}
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr("xl/worksheets/sheet1.xml", " " * (8 * 1024 * 1024))  # 8 MB of spaces, a few kB zipped
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        await save_profile(client, headers)
        response = await client.post("/v1/batches", params={"profile": "erp-fr"}, content=bomb.getvalue(),
                                     headers={**headers, "Content-Type": XLSX})
    assert len(bomb.getvalue()) < 64 * 1024
    assert response.status_code == 413 and response.json()["type"].endswith("/xlsx-decompression-limit")
    assert await count_rows(ingest, BatchRow) == 0

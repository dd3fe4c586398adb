"""`parcours import FILE|FOLDER` (the console script), against a real ingest: each file goes where
its format belongs, batches are followed to the end, and every invoice's outcome is printed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from parcours_ingest.store.models import InvoiceRow
from tests.ingest.conftest import mapping_profile

PROFILE = mapping_profile()
CSV = ("no,issued,due,customer,name,item,qty,price,vat,net,total_net,total_vat,total\n"
       "C-1,2026-11-02,2026-12-02,CUST-42,Dupont,Audit,1,100.00,20,100.00,100.00,20.00,120.00\n"
       "C-2,2026-11-02,2026-12-02,CUST-42,Dupont,Audit,1,100.00,20,100.00,100.00,20.00,999.00\n")


async def parcours(*args: str, api_key: str, url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "parcours"), *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PARCOURS_URL": url, "PARCOURS_API_KEY": api_key, "COLUMNS": "250", "NO_COLOR": "1"})
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, output.decode()


async def test_import_a_folder_of_every_kind_of_file(ingest, client, tenant_key, make_invoice, documents, tmp_path,
                                                     count_rows):
    key = await tenant_key(ingest)
    acme = {"Authorization": f"Bearer {key}"}
    assert (await client.put("/v1/mapping-profiles/erp", json=PROFILE, headers=acme)).status_code == 201
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "one.json").write_text(json.dumps(make_invoice("J-1")))
    (folder / "many.json").write_text(json.dumps([make_invoice("A-1"), make_invoice("A-2")]))
    (folder / "ubl.xml").write_bytes(documents.ubl(make_invoice("U-1")))
    (folder / "export.csv").write_text(CSV)
    (folder / "notes.txt").write_text("not an invoice file: skipped")

    status, output = await parcours("import", str(folder), "--profile", "erp", api_key=key, url=ingest.url)

    assert status == 1, output  # C-2 does not add up
    lines = output.splitlines()
    for number in ("J-1", "A-1", "A-2", "U-1", "C-1"):
        assert any(number in line and "accepted" in line for line in lines), (number, output)
    [c2] = [line for line in lines if "C-2" in line]
    assert "rejected" in c2 and "row 3 total" in c2, output
    assert "5 accepted, 1 rejected" in output
    assert "notes.txt" not in output
    assert await count_rows(ingest, InvoiceRow) == 5

    again, output = await parcours("import", str(folder), "--profile", "erp", api_key=key, url=ingest.url)
    assert again == 1 and "5 accepted, 1 rejected" in output, output  # the same files again replay their answers
    assert await count_rows(ingest, InvoiceRow) == 5
    single, output = await parcours("import", str(folder / "one.json"), api_key=key, url=ingest.url)
    assert single == 0 and "1 accepted" in output, output


async def test_import_a_pdf_to_split_and_bad_usage(ingest, client, tenant_key, make_invoice, documents, tmp_path):
    key = await tenant_key(ingest)
    await client.put("/v1/split-rules/lot", json={"mode": "pages", "pages": 1},
                     headers={"Authorization": f"Bearer {key}"})
    pdf = tmp_path / "lot.pdf"
    pdf.write_bytes(documents.text_pdf("Invoice L-1", "Invoice L-2"))
    data = tmp_path / "lot.json"
    data.write_text(json.dumps([make_invoice("L-1"), make_invoice("L-2")]))

    status, output = await parcours("import", str(pdf), "--split-rule", "lot", "--data", str(data),
                                    api_key=key, url=ingest.url)
    assert status == 0, output
    assert "pages 1-1" in output and "pages 2-2" in output and "2 accepted" in output

    no_key, output = await parcours("import", str(pdf), api_key="", url=ingest.url)
    assert no_key == 2 and "PARCOURS_API_KEY" in output
    no_profile, output = await parcours("import", str(tmp_path), "--split-rule", "lot", api_key=key, url=ingest.url)
    assert no_profile == 2 and "--data" in output

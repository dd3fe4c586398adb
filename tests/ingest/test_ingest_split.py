"""Batch PDF split: one PDF of many invoices cut by the tenant's rule (text anchor or fixed page
count), each part matched to its invoice data by number; parts matching nothing are reported and
kept, data without a part is reported; limits refuse oversize or overlong PDFs."""

from __future__ import annotations

import json

import httpx
from parcours_ingest.store.batch_models import BatchRow
from parcours_ingest.store.models import InvoiceRow

ANCHOR_RULE = {"mode": "anchor", "anchor": r"Facture n° (?P<number>S-\d+)"}


def split_upload(pdf: bytes, data: list[dict]) -> dict:
    return {"pdf": ("lot.pdf", pdf, "application/pdf"), "data": ("lot.json", json.dumps(data), "application/json")}


async def test_anchor_split_matches_parts_to_their_data_and_reports_the_rest(
        ingest, client, acme, make_invoice, documents, finished_batch, count_rows):
    rule = await client.put("/v1/split-rules/factures", json=ANCHOR_RULE, headers=acme)
    assert rule.status_code == 201, rule.text
    pdf = documents.text_pdf("Bordereau d'envoi", "Facture n° S-001", "S-001 suite", "Facture n° S-002",
                             "Facture n° S-099", "Facture n° S-003", "S-003 suite")
    data = [make_invoice(number) for number in ("S-001", "S-002", "S-003", "S-004")]

    response = await client.post("/v1/batches", params={"split_rule": "factures"}, files=split_upload(pdf, data),
                                 headers=acme)
    assert response.status_code == 202, response.text
    assert (response.json()["kind"], response.json()["total_items"]) == ("pdf-split", None)
    batch = await finished_batch(client, acme, response.json()["batch_id"])

    assert (batch["status"], batch["total_items"], batch["accepted_items"], batch["rejected_items"]) == ("done", 6, 3, 3)
    outcomes = [(i["seq"], i["status"], i["number"], i["location"].get("pages"), i["code"]) for i in batch["items"]]
    assert outcomes == [
        (0, "accepted", "S-001", [2, 3], None), (1, "accepted", "S-002", [4, 4], None),
        (2, "accepted", "S-003", [6, 7], None), (3, "rejected", "S-004", None, "missing-pdf-part"),
        (4, "unmatched", None, [1, 1], "unmatched-part"), (5, "unmatched", "S-099", [5, 5], "unmatched-part")]
    s001 = await client.get(f"/v1/invoices/{batch['items'][0]['invoice_id']}/pdf", headers=acme)
    assert documents.page_texts(s001.content) == ["Facture n° S-001", "S-001 suite"]
    stray = await client.get(batch["items"][5]["part"], headers=acme)
    assert stray.status_code == 200 and documents.page_texts(stray.content) == ["Facture n° S-099"]
    assert (await client.get(f"/v1/batches/{batch['batch_id']}/parts/0", headers=acme)).status_code == 404
    assert await count_rows(ingest, InvoiceRow) == 3


async def test_page_count_split_matches_by_the_number_in_the_text(ingest, client, acme, make_invoice, documents,
                                                                finished_batch):
    assert (await client.put("/v1/split-rules/two-pages", json={"mode": "pages", "pages": 2},
                             headers=acme)).status_code == 201
    pdf = documents.text_pdf("Invoice P-10", "terms", "Invoice P-11", "terms", "Invoice P-12", "terms")
    data = [make_invoice(number) for number in ("P-12", "P-10", "P-11")]  # not in the PDF's order
    response = await client.post("/v1/batches", params={"split_rule": "two-pages"}, files=split_upload(pdf, data),
                                 headers=acme)
    batch = await finished_batch(client, acme, response.json()["batch_id"])
    assert [(i["number"], i["status"], i["location"]["pages"]) for i in batch["items"]] == [
        ("P-12", "accepted", [5, 6]), ("P-10", "accepted", [1, 2]), ("P-11", "accepted", [3, 4])]


async def test_split_rules_are_checked(client, acme):
    for rule, pointer in [({"mode": "pages"}, ""), ({"mode": "anchor", "anchor": "Facture (S-\\d+"}, ""),
                          ({"mode": "anchor", "anchor": "Facture S-\\d+"}, ""), ({"mode": "slices", "pages": 1}, "/mode"),
                          ({"mode": "pages", "pages": 0}, "/pages")]:
        response = await client.put("/v1/split-rules/bad", json=rule, headers=acme)
        assert response.status_code == 422, rule
        assert response.json()["errors"][0]["pointer"] == pointer, response.json()
    assert (await client.get("/v1/split-rules", headers=acme)).json() == []


async def test_split_batches_within_limits(run_service, tenant_key, make_invoice, documents, count_rows):
    ingest = await run_service("ingest", max_body_bytes=64 * 1024, max_batch_pdf_pages=3)
    headers = {"Authorization": f"Bearer {await tenant_key(ingest)}"}
    data = [make_invoice("S-001")]
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        await client.put("/v1/split-rules/factures", json=ANCHOR_RULE, headers=headers)
        params = {"split_rule": "factures"}
        too_long = await client.post("/v1/batches", params=params, headers=headers,
                                     files=split_upload(documents.text_pdf(*["Facture n° S-001"] * 4), data))
        too_big = await client.post("/v1/batches", params=params, headers=headers,
                                    files=split_upload(b"%PDF-1.7\n" + b"0" * 70 * 1024, data))
        no_rule = await client.post("/v1/batches", headers=headers, files=split_upload(documents.text_pdf("x"), data))
        no_data = await client.post("/v1/batches", params=params, headers=headers,
                                    files={"pdf": ("lot.pdf", documents.text_pdf("x"), "application/pdf")})
        not_pdf = await client.post("/v1/batches", params=params, headers=headers,
                                    files=split_upload(b"GIF89a", data))
    assert (too_long.status_code, too_long.json()["type"].rsplit("/", 1)[1]) == (422, "too-many-pages")
    assert too_big.status_code == 413
    assert (no_rule.status_code, no_rule.json()["errors"][0]["pointer"]) == (422, "/split_rule")
    assert (no_data.status_code, no_data.json()["errors"][0]["pointer"]) == (422, "/data")
    assert (not_pdf.status_code, not_pdf.json()["type"].rsplit("/", 1)[1]) == (422, "not-a-pdf")
    assert await count_rows(ingest, BatchRow) == 0


async def test_split_data_from_a_csv_export_and_a_pattern_too_slow_to_run(ingest, client, acme, documents,
                                                                         finished_batch, count_rows):
    profile = {"columns": {"no": "number", "customer": "buyer.customer_ref", "item": "lines.description",
                           "qty": "lines.quantity", "price": "lines.unit_price", "net": "lines.line_total_excl_tax",
                           "total_net": "totals.total_excl_tax", "total_vat": "totals.total_tax",
                           "total": "totals.total_incl_tax"},
               "defaults": {"issue_date": "2026-11-02", "due_date": "2026-12-02", "currency": "EUR",
                            "seller.name": "ACME SAS", "buyer.name": "Dupont SARL", "lines.vat_rate": "20"}}
    assert (await client.put("/v1/mapping-profiles/lot", json=profile, headers=acme)).status_code == 201
    await client.put("/v1/split-rules/one-page", json={"mode": "pages", "pages": 1}, headers=acme)
    csv = ("no,customer,item,qty,price,net,total_net,total_vat,total\n"
           "V-1,CUST-42,Audit,1,100.00,100.00,100.00,20.00,120.00\n"
           "V-2,CUST-42,Audit,2,100.00,200.00,200.00,40.00,240.00\n")
    files = {"pdf": ("lot.pdf", documents.text_pdf("Invoice V-2", "Invoice V-1"), "application/pdf"),
             "data": ("lot.csv", csv, "text/csv")}
    response = await client.post("/v1/batches", params={"split_rule": "one-page", "profile": "lot"}, files=files,
                                 headers=acme)
    batch = await finished_batch(client, acme, response.json()["batch_id"])
    assert [(i["number"], i["status"], i["location"]) for i in batch["items"]] == [
        ("V-1", "accepted", {"rows": [2], "file": 0, "pages": [2, 2]}),
        ("V-2", "accepted", {"rows": [3], "file": 0, "pages": [1, 1]})]

    # a tenant's pattern that backtracks catastrophically fails its batch instead of holding the worker
    await client.put("/v1/split-rules/slow", json={"mode": "anchor", "anchor": r"(?P<number>(\w+\s?)+)$"},
                     headers=acme)
    files["pdf"] = ("slow.pdf", documents.text_pdf("a" * 3000 + "!"), "application/pdf")
    response = await client.post("/v1/batches", params={"split_rule": "slow", "profile": "lot"}, files=files,
                                 headers=acme)
    slow = await finished_batch(client, acme, response.json()["batch_id"])
    assert (slow["status"], slow["error"]["type"], slow["items"]) == ("failed", "split-rule-too-slow", [])
    assert await count_rows(ingest, InvoiceRow) == 2

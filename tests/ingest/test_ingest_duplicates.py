"""Duplicates: one invoice per tenant, seller, number and issue year. The same number from another
seller of the tenant, or in another year, is a new invoice; the same one again is a 409 linking to
the first (a single POST) or a `duplicate` item (a batch), however the seller was identified."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from parcours_contracts import InvoiceReceived, topics
from parcours_ingest.app import definition
from parcours_ingest.domain.duplicates import duplicate_key, seller_key
from parcours_ingest.domain.invoice import InvoiceContent, Seller
from parcours_ingest.store.models import InvoiceRow
from parcours_runtime.migrations import upgrade

PROBLEM_JSON = "application/problem+json"
ACME_SIREN = "732829320"


def issued_in(body: dict, year: int) -> dict:
    body["issue_date"], body["due_date"] = f"{year}-11-02", f"{year}-12-02"
    return body


def sold_by(body: dict, **seller) -> dict:
    body["seller"] = seller
    return body


def test_the_seller_is_its_legal_entity_however_the_invoice_names_it():
    assert {seller_key(Seller(name="ACME SAS", siren=ACME_SIREN)),
            seller_key(Seller(name="ACME", siret="73282932000074")),
            seller_key(Seller(name="Acme Marseille", vat_id="FR44732829320"))} == {f"siren:{ACME_SIREN}"}
    assert seller_key(Seller(name="ACME GmbH", vat_id="ESb12345678")) == "vat:ESB12345678"
    assert seller_key(Seller(name="  Boulangerie   du Port ")) == seller_key(Seller(name="BOULANGERIE DU PORT"))
    assert seller_key(Seller(name="Boulangerie du Port")) != seller_key(Seller(name="Boulangerie du Quai"))


def test_the_key_is_number_seller_and_issue_year(make_invoice):
    key = duplicate_key(InvoiceContent.model_validate(make_invoice("F-1")))
    assert (key.number, key.seller, key.issue_year) == ("F-1", f"siren:{ACME_SIREN}", 2026)
    assert duplicate_key(InvoiceContent.model_validate(issued_in(make_invoice("F-1"), 2025))) != key


async def test_same_number_other_year_or_other_seller_is_a_new_invoice_the_same_one_is_a_409(
        ingest, client, acme, make_invoice, read_events, count_rows):
    first = await client.post("/v1/invoices", json=make_invoice("F-0042"), headers=acme)
    assert first.status_code == 202, first.text
    existing = first.json()["invoice_id"]

    last_year = await client.post("/v1/invoices", json=issued_in(make_invoice("F-0042"), 2025), headers=acme)
    other_seller = await client.post("/v1/invoices", headers=acme, json=sold_by(
        make_invoice("F-0042"), name="Filiale Sud SAS", siren="552100554"))
    unidentified = await client.post("/v1/invoices", headers=acme, json=sold_by(
        make_invoice("F-0042"), name="Atelier sans SIREN"))
    assert [r.status_code for r in (last_year, other_seller, unidentified)] == [202, 202, 202]

    # the same seller, known this time by its VAT number only (it contains the SIREN), same year
    again = await client.post("/v1/invoices", headers={**acme, "Idempotency-Key": "another-request"}, json=sold_by(
        make_invoice("F-0042"), name="ACME", vat_id="FR44732829320"))
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM_JSON
    problem = again.json()
    assert problem["type"].endswith("/duplicate-invoice-number")
    assert (problem["existing_invoice_id"], problem["existing_invoice"]) == (existing, f"/v1/invoices/{existing}")
    assert again.headers["location"] == f"/v1/invoices/{existing}"
    assert problem["errors"] == [{"pointer": "/number", "detail": "already received", "code": "duplicate",
                                  "existing_invoice": f"/v1/invoices/{existing}"}]
    assert ACME_SIREN in problem["detail"] and "2026" in problem["detail"]
    named_again = await client.post("/v1/invoices", headers=acme, json=sold_by(
        make_invoice("F-0042"), name=" atelier SANS siren "))
    assert named_again.status_code == 409
    assert named_again.json()["existing_invoice_id"] == unidentified.json()["invoice_id"]

    assert await count_rows(ingest, InvoiceRow) == 4
    events = await read_events(topics.INVOICE_RECEIVED, until=lambda es: len(es) >= 4)
    assert sorted((e.invoice.issue_date.year, e.invoice.seller_name) for e in events
                  if isinstance(e, InvoiceReceived)) == [
        (2025, "ACME SAS"), (2026, "ACME SAS"), (2026, "Atelier sans SIREN"), (2026, "Filiale Sud SAS")]


async def test_batches_use_the_same_key(client, acme, make_invoice, finished_batch):
    earlier = (await client.post("/v1/invoices", json=make_invoice("B-7"), headers=acme)).json()["invoice_id"]
    body = [make_invoice("B-7"),                                             # the one posted before
            issued_in(make_invoice("B-7"), 2025),                            # another year
            sold_by(make_invoice("B-7"), name="Filiale Sud SAS", siret="55210055400013"),  # another seller
            sold_by(make_invoice("B-7"), name="Filiale Sud", siren="552100554")]  # that seller again

    response = await client.post("/v1/batches", json=body, headers=acme)
    assert response.status_code == 202, response.text
    items = (await finished_batch(client, acme, response.json()["batch_id"]))["items"]

    assert [i["status"] for i in items] == ["duplicate", "accepted", "accepted", "duplicate"]
    assert items[0]["errors"][0]["existing_invoice"] == f"/v1/invoices/{earlier}"
    assert items[3]["errors"][0]["existing_invoice"] == f"/v1/invoices/{items[2]['invoice_id']}"
    assert items[0]["code"] == items[3]["code"] == "duplicate-invoice-number"
    years = {(await client.get(f"/v1/invoices/{i['invoice_id']}", headers=acme)).json()["issue_date"][:4]
             for i in items if i["status"] == "accepted"}
    assert years == {"2025", "2026"}


async def test_the_migration_keys_the_invoices_already_stored_as_new_ones_are_keyed(make_database, make_invoice):
    sellers = [{"name": "ACME SAS", "siren": ACME_SIREN}, {"name": "ACME", "siret": "73282932000074"},
               {"name": "Acme", "vat_id": "FR44732829320"}, {"name": "Firma", "vat_id": "ESb12345678"},
               {"name": "  Société   Générale "}]
    url = make_database("ingest_dup_backfill")
    script_location = definition().script_location()
    await upgrade(url, script_location, "0005")
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for n, seller in enumerate(sellers):
                invoice = InvoiceContent.model_validate(sold_by(issued_in(make_invoice(f"OLD-{n}"), 2024 + n % 2),
                                                                **seller))
                await conn.execute(text(
                    "INSERT INTO invoices (id, tenant_id, number, issue_date, due_date, currency, customer_ref, "
                    "total_incl_tax, document, has_pdf, correlation_id) VALUES (gen_random_uuid(), 'acme', :number, "
                    ":issue, :due, 'EUR', 'CUST-42', 1, CAST(:document AS jsonb), false, 'c')"),
                    {"number": invoice.number, "issue": invoice.issue_date, "due": invoice.due_date,
                     "document": json.dumps(invoice.model_dump(mode="json"))})

        await upgrade(url, script_location)

        async with engine.connect() as conn:
            keyed = (await conn.execute(text("SELECT number, seller_key, issue_year FROM invoices ORDER BY number"))).all()
    finally:
        await engine.dispose()
    expected = [(f"OLD-{n}", seller_key(Seller(**seller)), 2024 + n % 2) for n, seller in enumerate(sellers)]
    assert [tuple(row) for row in keyed] == expected
    assert [key for _, key, _ in keyed] == [f"siren:{ACME_SIREN}"] * 3 + ["vat:ESB12345678", "name:société générale"]

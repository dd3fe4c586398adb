"""Pure rules of ingest: invoice arithmetic, invoice schema, tenant ids, request fingerprints, settings."""

from __future__ import annotations

import base64
import copy
import json
import re
from decimal import Decimal

import pytest
from pydantic import ValidationError

from parcours_ingest.config import Settings
from parcours_ingest.domain.arithmetic import check_arithmetic, round_half_up
from parcours_ingest.domain.idempotency import request_fingerprint
from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.domain.tenants import TENANT_ID_PATTERN, tenant_id_from_name


def invoice(body: dict) -> Invoice:
    # as the API reads bodies: JSON numbers become Decimal, never float
    return Invoice.model_validate(json.loads(json.dumps(body), parse_float=Decimal))


def mismatches(body: dict) -> dict[tuple, tuple[str, str]]:
    return {m.path: (str(m.expected), str(m.given)) for m in check_arithmetic(invoice(body))}


def test_a_consistent_invoice_has_no_mismatch(make_invoice):
    assert check_arithmetic(invoice(make_invoice())) == []


def test_round_half_up_rounds_the_half_cent_up():
    assert round_half_up(Decimal("100.005")) == Decimal("100.01")
    assert round_half_up(Decimal("0.0165")) == Decimal("0.02")
    assert round_half_up(Decimal("2.675")) == Decimal("2.68")  # a float would make this 2.67


def test_every_mismatch_is_reported_with_expected_and_given(make_invoice):
    body = make_invoice()
    body["lines"][0]["line_total_excl_tax"] = "100.00"  # 3 × 33.335 = 100.005 → 100.01
    body["lines"][3]["line_total_excl_tax"] = "20"  # 1 × 19.99
    # the given line totals still sum to 120.60; VAT on them: 20 % of 120.00 + 5.5 % of 0.60 = 24.03
    body["totals"] = {"total_excl_tax": "120.60", "total_tax": "24.04", "total_incl_tax": "144.00"}
    assert mismatches(body) == {
        ("lines", 0, "line_total_excl_tax"): ("100.01", "100.00"),
        ("lines", 3, "line_total_excl_tax"): ("19.99", "20"),
        ("totals", "total_tax"): ("24.03", "24.04"),
        ("totals", "total_incl_tax"): ("144.64", "144.00"),
    }


def test_total_without_vat_must_be_the_sum_of_the_lines(make_invoice):
    body = make_invoice()
    body["totals"]["total_excl_tax"] = "120.61"
    body["totals"]["total_incl_tax"] = "144.64"
    assert mismatches(body) == {("totals", "total_excl_tax"): ("120.60", "120.61")}


def test_vat_is_rounded_per_rate_not_per_line(make_invoice):
    body = make_invoice()
    body["totals"]["total_tax"] = "24.04"  # 20.00 + 0.02 + 0.02 + 4.00: rounded line by line
    body["totals"]["total_incl_tax"] = "144.64"
    assert mismatches(body) == {("totals", "total_tax"): ("24.03", "24.04")}


def test_equal_amounts_written_differently_match(make_invoice):
    body = make_invoice()
    body["lines"][3]["vat_rate"] = 20  # the same rate as "20.0" on line 0: one VAT base
    body["totals"]["total_incl_tax"] = "144.630"
    body["lines"][2]["line_total_excl_tax"] = "0.3"
    assert mismatches(body) == {}


def test_big_amounts_are_computed_exactly(make_invoice):
    body = make_invoice()
    body["lines"] = [{"description": "Plant", "quantity": "1234567.891", "unit_price": "1000.005",
                      "vat_rate": 20, "line_total_excl_tax": "1234574063.84"}]  # exactly 1234574063.839455
    body["totals"] = {"total_excl_tax": "1234574063.84", "total_tax": "246914812.77", "total_incl_tax": "1481488876.61"}
    assert mismatches(body) == {}
    # 36 significant digits: beyond the default 28-digit context, still exact (and no crash)
    body["lines"][0].update(quantity="123456789012.123456", unit_price="987654321098.765432")
    assert mismatches(body)[("lines", 0, "line_total_excl_tax")] == ("121932631136802315803968.60", "1234574063.84")


def errors_at(body: dict) -> set[tuple]:
    with pytest.raises(ValidationError) as caught:
        invoice(body)
    return {err["loc"] for err in caught.value.errors()}


def test_schema_rules(make_invoice):
    body = make_invoice()
    body["due_date"] = "2026-11-01"  # before the issue date
    body["currency"] = "eur"
    body["lines"][1]["quantity"] = 0
    body["lines"][2]["vat_rate"] = 101
    body["lines"][0]["unit_price"] = "NaN"
    body["totals"]["total_tax"] = "1.005"  # amounts have at most 2 decimals
    body["seller"]["siren"] = "12345"
    del body["buyer"]["customer_ref"]
    assert errors_at(body) == {("due_date",), ("currency",), ("lines", 1, "quantity"), ("lines", 2, "vat_rate"),
                               ("lines", 0, "unit_price"), ("totals", "total_tax"), ("seller", "siren"),
                               ("buyer", "customer_ref")}


def test_what_the_schema_accepts_fits_the_event_summary(make_invoice):
    """A body that passes validation must never fail later when InvoiceReceived is built (a 500)."""
    from parcours_ingest.api.invoices import summarise

    edge = make_invoice("N" * 64)
    edge["buyer"]["customer_ref"] = "Ref_1.a-" + "z" * 56
    edge["seller"]["name"] = edge["buyer"]["name"] = "x" * 200
    assert summarise(invoice(edge)).customer_ref == edge["buyer"]["customer_ref"]
    for bad_ref in ("CUST 42", "Café", "x" * 65, "a/b"):
        assert errors_at({**make_invoice(), "buyer": {"customer_ref": bad_ref, "name": "B"}}) == {("buyer", "customer_ref")}
    assert errors_at(make_invoice("N" * 65)) == {("number",)}


def test_pdf_must_be_base64_of_a_pdf(make_invoice):
    assert invoice(make_invoice(with_pdf=True)).pdf_bytes().startswith(b"%PDF-")
    for bad in ("not base64 at all!", base64.b64encode(b"<html>").decode(), ""):
        assert errors_at({**make_invoice(), "pdf": bad}) == {("pdf",)}
    wrapped = base64.encodebytes(b"%PDF-1.4 " + b"x" * 200).decode()  # MIME line breaks are fine
    assert invoice({**make_invoice(), "pdf": wrapped}).pdf_bytes().startswith(b"%PDF-1.4")


def test_stored_document_keeps_decimal_strings_and_no_pdf(make_invoice):
    document = invoice(make_invoice(with_pdf=True)).document()
    assert "pdf" not in document
    assert document["lines"][1]["quantity"] == "0.1"
    assert document["totals"]["total_tax"] == "24.03"


def test_tenant_ids_from_names():
    assert tenant_id_from_name("Café Dupont & Fils SA", suffix="3f9a1c") == "cafe-dupont-fils-sa-3f9a1c"
    assert tenant_id_from_name("株式会社", suffix="00aa11") == "tenant-00aa11"
    long_id = tenant_id_from_name("x" * 300, suffix="abcdef")
    for tenant_id in ("cafe-dupont-fils-sa-3f9a1c", long_id, tenant_id_from_name("--A--", suffix="abcdef")):
        assert re.match(TENANT_ID_PATTERN, tenant_id), tenant_id


def test_fingerprint_ignores_key_order_but_not_values(make_invoice):
    body = make_invoice("F-1")
    reordered = dict(reversed(list(copy.deepcopy(body).items())))
    changed = copy.deepcopy(body)
    changed["lines"][0]["description"] = "Consulting (revised)"
    assert request_fingerprint(body) == request_fingerprint(reordered)
    assert request_fingerprint(body) != request_fingerprint(changed)


def test_production_refuses_the_dev_admin_token():
    with pytest.raises(ValidationError, match="admin_token"):
        Settings(environment="production")
    assert Settings(environment="production", admin_token="s3cr3t-from-the-vault").admin_token


@pytest.mark.parametrize(("raw", "pointers"), [
    (b'{"buyer": {"name": "Dupont\\u0000SARL"}, "lines": [{"x": "a"}, {"y": "\\u0000"}]}', ["/buyer/name", "/lines/1/y"]),
    (b'{"a/b\\u0000": 1}', ["/a~1b\x00"]),
    (b'"\\u0000"', [""]),
])
def test_a_json_body_with_a_nul_character_is_refused_at_each_string_that_holds_it(raw, pointers):
    from parcours_ingest.api.body import parse_json
    from parcours_runtime.problems import Problem

    with pytest.raises(Problem) as refused:
        parse_json(raw)
    assert refused.value.status == 422 and refused.value.slug == "unstorable-text"
    assert [error["pointer"] for error in refused.value.errors] == pointers


def test_a_backslash_before_u0000_is_only_text():
    from parcours_ingest.api.body import parse_json

    assert parse_json(b'{"note": "C:\\\\u0000"}') == {"note": "C:\\u0000"}

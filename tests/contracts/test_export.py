"""The committed contract docs match the models, hang together, and describe real events."""

from __future__ import annotations

import re

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema
import pytest
import yaml

from parcours_contracts import (
    ALL_EVENT_TYPES,
    Attachment,
    DeliveryAcked,
    DispatchFailed,
    DispatchRequested,
    InvoiceDispatched,
    InvoiceReceived,
    InvoiceSummary,
    InvoiceUnroutable,
    LinkClicked,
    Recipient,
    RecipientActionRequested,
    ReminderDue,
    TenantApiKeyIssued,
    TenantApiKeyRevoked,
    TenantBrandingChanged,
    BrandingLogo,
    CustomerChanged,
    DeliveryBounced,
    IncidentOpened,
    IncidentResolved,
    IncidentResolutionRequested,
    RedeliveryRequested,
    InvoiceLifecycleChanged,
    LifecycleStatus,
    PaymentPromised,
    PaymentRecorded,
    Penalties,
    parse_event,
    topic_for,
    topics,
)
from parcours_contracts.events import ReminderInfo, SentMessage
from parcours_contracts.export import (
    ASYNCAPI_FILE, DEAD_LETTER, build_asyncapi, check, event_schemas, main, write,
)

ROOT = Path(__file__).resolve().parents[2]

TENANT = "acme-fr"
INVOICE_ID = UUID("6f1c2b7e-3d4a-4e8b-9c0d-1a2b3c4d5e6f")
DISPATCH_ID = UUID("0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b")
CORRELATION = "ingest-req-5f2c9a"
AT = datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=1)))

SUMMARY = InvoiceSummary(
    number="F-2025-00042",
    issue_date=date(2025, 3, 14),
    due_date=date(2025, 4, 13),
    currency="EUR",
    total_excl_tax=Decimal("1250.00"),
    total_tax=Decimal("250.00"),
    total_incl_tax=Decimal("1500.00"),
    seller_name="Acme SAS",
    buyer_name="Dupont & Fils SARL",
    customer_ref="C-00917",
    has_pdf=True,
    type_code="380",
)
REMINDER = ReminderInfo(strategy="standard-b2b", step="j+7", sequence=1, channel="email_link", template="relance-1")
PENALTIES = Penalties(indemnity=Decimal("40.00"), interest=Decimal("3.99"), rate=Decimal("12.15"), days_late=8,
                      base=Decimal("1500.00"))
ENVELOPE: dict[str, Any] = dict(tenant_id=TENANT, correlation_id=CORRELATION, occurred_at=AT)
ABOUT_INVOICE: dict[str, Any] = dict(ENVELOPE, invoice_id=INVOICE_ID)

EXAMPLES = {
    "invoice.received": InvoiceReceived(**ABOUT_INVOICE, invoice=SUMMARY),
    "invoice.unroutable": InvoiceUnroutable(
        **ABOUT_INVOICE, customer_ref="C-00917", reason="no channel configured for customer C-00917"
    ),
    "dispatch.requested": DispatchRequested(
        **ABOUT_INVOICE,
        dispatch_id=DISPATCH_ID,
        channel="email",
        fallback_channels=["postal"],
        recipients=[Recipient(email="compta@dupont-fils.fr", name="Service comptable")],
        purpose="reminder",
        reminder=REMINDER,
        invoice=SUMMARY,
        penalties=PENALTIES,
    ),
    "invoice.dispatched": InvoiceDispatched(
        **ABOUT_INVOICE,
        dispatch_id=DISPATCH_ID,
        channel="email",
        messages=[SentMessage(recipient="compta@dupont-fils.fr", message_id="<20250314.1@mail.acme.test>")],
    ),
    "dispatch.failed": DispatchFailed(
        **ABOUT_INVOICE,
        dispatch_id=DISPATCH_ID,
        channel="email",
        reason="550 5.1.1 mailbox unavailable",
        fallback_channels=["postal"],
    ),
    "delivery.acked": DeliveryAcked(
        **ABOUT_INVOICE, channel="peppol", ack_id="MLR-7781", acked_at=AT + timedelta(minutes=3)
    ),
    "link.clicked": LinkClicked(
        **ABOUT_INVOICE,
        dispatch_id=DISPATCH_ID,
        recipient="compta@dupont-fils.fr",
        ip="203.0.113.7",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0",
    ),
    "reminder.due": ReminderDue(
        **ABOUT_INVOICE, reminder=REMINDER, reason="unpaid 7 days after due date", invoice=SUMMARY,
        penalties=PENALTIES,
    ),
    "delivery.bounced": DeliveryBounced(
        **ABOUT_INVOICE, dispatch_id=DISPATCH_ID, channel="email_link", recipient="compta@dupont-fils.fr",
        message_id="<20250314.1@mail.acme.test>", permanent=True, status="5.1.1",
        diagnostic="smtp; 550 5.1.1 <compta@dupont-fils.fr>: Recipient address rejected",
    ),
    "invoice.lifecycle_changed": InvoiceLifecycleChanged(
        **ABOUT_INVOICE, status="EN_LITIGE", code=LifecycleStatus.EN_LITIGE, previous_status="viewed",
        source="portal", reason="quantité livrée inférieure", status_at=AT + timedelta(days=2),
    ),
    "payment.recorded": PaymentRecorded(
        **ABOUT_INVOICE, payment_id="VIR-2025-0311", amount=Decimal("500.00"), currency="EUR",
        paid_on=date(2025, 4, 10), open_amount=Decimal("1000.00"), fully_paid=False, source="camt053",
        reference="F-2025-00042", status="received",
    ),
    "payment.promised": PaymentPromised(**ABOUT_INVOICE, promised_on=date(2025, 4, 30), source="portal"),
    "incident.opened": IncidentOpened(
        **ABOUT_INVOICE, incident_id=DISPATCH_ID, kind="not_received", channel="email_link",
        evidence={"dispatched_at": "2025-03-14T09:27:00Z", "views": 0}, suggested_action="call",
    ),
    "incident.resolved": IncidentResolved(**ABOUT_INVOICE, incident_id=DISPATCH_ID, resolution="customer called"),
    "recipient.action_requested": RecipientActionRequested(
        **ABOUT_INVOICE, kind="disputed", reason="Quantité livrée : 8, facturée : 10", actor="ap@client.example",
        attachment=Attachment(filename="bon-de-livraison.pdf", content_type="application/pdf", size=48213,
                              sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ),
    "incident.resolution_requested": IncidentResolutionRequested(
        **ABOUT_INVOICE, incident_id=DISPATCH_ID, resolution="customer called", actor="cm@acme.example"),
    "redelivery.requested": RedeliveryRequested(
        **ABOUT_INVOICE, channel="email_attachment", incident_id=DISPATCH_ID, actor="cm@acme.example"),
    "customer.changed": CustomerChanged(**ENVELOPE, customer_ref="C-00917", name="Dupont & Fils SARL",
                                        group="grands-comptes", language="fr",
                                        tags=["grands-comptes", "public-sector"]),
    "tenant.api_key_issued": TenantApiKeyIssued(
        **ENVELOPE,
        key_id="key_01",
        key_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        tenant_name="Acme",
    ),
    "tenant.api_key_revoked": TenantApiKeyRevoked(**ENVELOPE, key_id="key_01"),
    "tenant.branding_changed": TenantBrandingChanged(
        **ENVELOPE, name="ACME Services", primary_color="#0b7285", legal_footer="ACME SAS — RCS Paris 732 829 320",
        logo=BrandingLogo(media_type="image/png", data=b"\x89PNG\r\n\x1a\n\xfb\xff")),
}


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    validator = jsonschema.Draft202012Validator
    validator.check_schema(schema)
    return validator(schema, format_checker=validator.FORMAT_CHECKER)


def _refs(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref}: no {part!r}"
        node = node[part]
    return node


def test_committed_docs_match_the_models():
    assert check(ROOT) == [], "contract docs are stale: run `make contracts`"
    committed = yaml.safe_load((ROOT / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    assert committed == build_asyncapi()


def test_check_reports_missing_stale_and_orphaned_files(tmp_path, capsys):
    assert len(check(tmp_path)) == len(ALL_EVENT_TYPES) + 1
    write(tmp_path)
    assert check(tmp_path) == []
    (tmp_path / "docs/schemas/invoice.received.json").write_text("{}\n")
    (tmp_path / "docs/schemas/invoice.deleted.json").write_text("{}\n")
    assert check(tmp_path) == ["docs/schemas/invoice.deleted.json", "docs/schemas/invoice.received.json"]
    with pytest.raises(SystemExit) as exit_:
        main(["--check", "--root", str(tmp_path)])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "docs/schemas/invoice.received.json" in out and "run `make contracts`" in out
    main(["--root", str(tmp_path)])
    assert check(tmp_path) == []


def test_every_event_type_is_on_exactly_its_topic_channel():
    assert set(EXAMPLES) == set(ALL_EVENT_TYPES)
    channels = build_asyncapi()["channels"]
    assert set(channels) == set(topics.ALL_WITH_DLQ)
    for topic in topics.ALL:
        expected = {event_type for event_type, event in EXAMPLES.items() if topic_for(event) == topic}
        assert channels[topic]["address"] == topic
        assert set(channels[topic]["messages"]) == expected, topic
        assert set(channels[topics.dlq(topic)]["messages"]) == {DEAD_LETTER}
    tenant_messages = set(channels[topics.TENANT_EVENTS]["messages"])
    assert tenant_messages == {"tenant.api_key_issued", "tenant.api_key_revoked"}


def test_every_ref_in_the_asyncapi_document_resolves():
    document = build_asyncapi()
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        _resolve(document, ref)
    assert not any("$defs" in ref for ref in refs)
    for operation_id, operation in document["operations"].items():
        channel = _resolve(document, operation["channel"]["$ref"])
        for message in operation["messages"]:
            assert _resolve(document, message["$ref"]) in channel["messages"].values(), operation_id


def test_message_keys_and_headers_are_documented():
    components = build_asyncapi()["components"]
    for event_type, message in components["messages"].items():
        key = message["bindings"]["kafka"]["key"]
        if event_type.startswith("tenant."):
            assert "tenant_id" in key["description"]
        elif event_type == "customer.changed":
            assert key["pattern"].startswith("^[^:]+:") and "customer_ref" in key["description"]
            assert re.match(key["pattern"], EXAMPLES[event_type].key)
        elif event_type != DEAD_LETTER:
            assert key["format"] == "uuid" and "invoice_id" in key["description"]
    assert "traceparent" in components["schemas"]["EventHeaders"]["properties"]
    dead_letter_headers = components["schemas"]["DeadLetterHeaders"]["properties"]
    for header in ("parcours-error", "parcours-attempts", "parcours-consumer", "parcours-original-topic",
                   "parcours-original-partition", "parcours-original-offset", "traceparent"):
        assert header in dead_letter_headers


@pytest.mark.parametrize("event_type", list(ALL_EVENT_TYPES))
def test_schema_validates_a_serialized_event(event_type):
    event = EXAMPLES[event_type]
    assert type(event) is ALL_EVENT_TYPES[event_type]
    _validator(event_schemas()[event_type]).validate(event.model_dump(mode="json"))
    assert parse_event(event.model_dump_json()) == event


@pytest.mark.parametrize("event_type", list(ALL_EVENT_TYPES))
def test_asyncapi_payload_validates_a_serialized_event(event_type):
    document = build_asyncapi()
    payload = _resolve(document, document["components"]["messages"][event_type]["payload"]["$ref"])
    # Resolve #/components/... refs against the whole document, as an AsyncAPI tool would.
    schema = {**payload, "components": document["components"]}
    jsonschema.Draft7Validator(schema).validate(EXAMPLES[event_type].model_dump(mode="json"))


def test_invoice_received_without_invoice_id_fails_the_schema():
    payload = EXAMPLES["invoice.received"].model_dump(mode="json")
    del payload["invoice_id"]
    errors = list(_validator(event_schemas()["invoice.received"]).iter_errors(payload))
    assert [error.validator for error in errors] == ["required"]
    assert "'invoice_id' is a required property" in errors[0].message


def test_schema_requires_the_discriminator_like_parse_event():
    payload = EXAMPLES["tenant.api_key_revoked"].model_dump(mode="json")
    del payload["type"]
    assert not _validator(event_schemas()["tenant.api_key_revoked"]).is_valid(payload)
    with pytest.raises(ValueError):
        parse_event(json.dumps(payload))


def test_an_older_consumer_reads_an_event_with_fields_it_does_not_know():
    payload = EXAMPLES["reminder.due"].model_dump(mode="json")
    payload["field_from_a_newer_producer"] = {"anything": 1}
    payload["invoice"]["another_new_field"] = "x"
    import json

    assert parse_event(json.dumps(payload)) == EXAMPLES["reminder.due"]

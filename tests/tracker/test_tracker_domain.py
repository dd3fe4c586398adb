"""Pure rules: status precedence from any order of facts, ack signatures, settings guards."""

from __future__ import annotations

import itertools
import json
import random
import uuid

import pytest
from pydantic import ValidationError

from parcours_tracker.config import Settings
from parcours_tracker.domain import journal
from parcours_tracker.domain.acks import AckRejected, sign_ack, verify_ack
from parcours_tracker.domain.status import project


def entries(*events) -> list[journal.Entry]:
    """Journal entries as the handlers make them."""
    makers = {"invoice.received": journal.received, "invoice.unroutable": journal.unroutable,
              "dispatch.requested": journal.dispatch_requested, "invoice.dispatched": journal.dispatched,
              "dispatch.failed": journal.dispatch_failed, "delivery.acked": journal.acked,
              "link.clicked": journal.clicked, "reminder.due": journal.reminder_due}
    return [makers[event.type](event) for event in events]


def test_each_fact_moves_the_status_forward(flow):
    f = flow()
    steps = [(f.received(0), "received"), (f.dispatch_requested(1), "queued"), (f.dispatched(2), "sent"),
             (f.acked(3), "delivered"), (f.clicked(4), "viewed")]
    known = []
    for event, expected in steps:
        known.append(event)
        projection = project(entries(*known))
        assert projection.status == expected
        assert projection.status_at == event.occurred_at
    assert projection.first_dispatched_at == f.dispatched(2).occurred_at
    assert projection.acked_at == f.acked(3).occurred_at
    assert projection.viewed_at == f.clicked(4).occurred_at


def test_every_arrival_order_gives_the_same_projection(flow):
    f = flow()
    facts = entries(f.received(0), f.dispatch_requested(1), f.failed(2), f.dispatch_requested(3, uuid.uuid4()),
                    f.dispatched(4), f.reminder_due(60))
    expected = project(facts)
    assert expected.status == "sent"
    for order in itertools.permutations(facts):
        assert project(order) == expected


def test_proof_of_arrival_wins_whatever_arrives_first(flow):
    f = flow()
    facts = entries(f.received(0), f.dispatch_requested(1), f.dispatched(2), f.acked(3), f.clicked(5),
                    f.failed(6, dispatch_id=uuid.uuid4()))
    for _ in range(50):
        random.shuffle(facts)
        assert project(facts).status == "viewed"
        assert project(facts).status_at == f.clicked(5).occurred_at


def test_unroutable_is_an_incident_until_a_later_dispatch(flow):
    f = flow()
    assert project(entries(f.received(0), f.unroutable(1))).status == "unroutable"
    # A dispatch requested before the unroutable verdict does not clear it; a later one does.
    assert project(entries(f.dispatch_requested(0.5), f.received(0), f.unroutable(1))).status == "unroutable"
    rerouted = project(entries(f.unroutable(1), f.received(0), f.dispatch_requested(5, uuid.uuid4())))
    assert (rerouted.status, rerouted.status_at) == ("queued", f.dispatch_requested(5).occurred_at)


def test_failed_is_cleared_by_a_fallback_or_a_later_dispatch_not_by_its_own_request(flow):
    f = flow()
    failed = project(entries(f.received(0), f.dispatch_requested(1), f.failed(2)))
    assert (failed.status, failed.status_at) == ("failed", f.failed(2).occurred_at)
    fallback = uuid.uuid4()
    retried = project(entries(f.received(0), f.dispatch_requested(1), f.failed(2),
                              f.dispatch_requested(3, fallback, channel="postal")))
    assert retried.status == "queued"
    assert project(entries(f.received(0), f.dispatch_requested(1), f.failed(2),
                           f.dispatched(3, dispatch_id=fallback))).status == "sent"
    # The fallback failing too is a new incident.
    assert project(entries(f.received(0), f.dispatch_requested(1), f.failed(2), f.dispatch_requested(3, fallback),
                           f.failed(4, dispatch_id=fallback))).status == "failed"


def test_reminder_facts_never_change_the_invoice_status(flow):
    f = flow()
    base = [f.received(0), f.dispatch_requested(1), f.dispatched(2)]
    reminders = [f.reminder_due(60), f.dispatch_requested(61, uuid.uuid4(), purpose="reminder"),
                 f.failed(62, purpose="reminder"), f.dispatched(63, dispatch_id=uuid.uuid4(), purpose="reminder")]
    assert project(entries(*base, *reminders)) == project(entries(*base))
    kinds = [e.kind for e in entries(*reminders)]
    assert kinds == ["reminder_due", "dispatch_requested", "reminder_failed", "reminded"]
    only_reminders = project(entries(f.reminder_due(60)))
    assert (only_reminders.status, only_reminders.status_at) == ("pending", f.reminder_due(60).occurred_at)


def test_a_reminder_link_click_is_a_view(flow):
    f = flow()
    assert project(entries(f.received(0), f.dispatched(2, purpose="reminder"), f.clicked(70))).status == "viewed"


def test_ack_signature_round_trip_and_rotation():
    body = json.dumps({"tenant_id": "acme", "ack_id": "A1"}).encode()
    signature = sign_ack("old", 1_800_000_000, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_ack(["new", "old"], timestamp="1800000000", signature=signature, body=body,
                      now=1_800_000_100, tolerance_seconds=300) == 1_800_000_000
    with pytest.raises(AckRejected, match="Bad signature"):
        verify_ack(["new"], timestamp="1800000000", signature=signature, body=body, now=1_800_000_000,
                   tolerance_seconds=300)


@pytest.mark.parametrize("timestamp, signature, body, now, reason", [
    ("1800000000", None, b"{}", 1_800_000_000, "required"),
    (None, "sha256=00", b"{}", 1_800_000_000, "required"),
    ("1800000000", "sign:{1800000000}", b'{"x":2}', 1_800_000_000, "Bad signature"),  # body changed
    ("1800000001", "sign:{1800000000}", b"{}", 1_800_000_000, "Bad signature"),  # timestamp changed
    ("1800000000", "sign:{1800000000}", b"{}", 1_800_000_301, "away from our clock"),  # stale
    ("1800000400", "sign:{1800000400}", b"{}", 1_800_000_000, "away from our clock"),  # from the future
    ("1_800_000_000", "sign:{1_800_000_000}", b"{}", 1_800_000_000, "unix seconds"),
    ("1800000000", "sha256=\u00e9\u00e9", b"{}", 1_800_000_000, "Bad signature"),  # non-ASCII must not crash
])
def test_ack_verification_refuses(timestamp, signature, body, now, reason):
    if signature and signature.startswith("sign:"):
        signature = sign_ack("s3cret", signature[6:-1], b"{}")
    with pytest.raises(AckRejected, match=reason):
        verify_ack(["s3cret"], timestamp=timestamp, signature=signature, body=body, now=now, tolerance_seconds=300)


def test_production_refuses_dev_secrets_and_too_many_ack_secrets():
    real_acks = {"edi": ["a" * 32, "b" * 32]}
    with pytest.raises(ValidationError, match="admin_token"):
        Settings(environment="production", ack_secrets=real_acks, link_secrets=["real"])
    with pytest.raises(ValidationError, match="link_secrets"):
        Settings(environment="production", ack_secrets=real_acks)
    with pytest.raises(ValidationError, match="link_secrets"):
        Settings(environment="production", ack_secrets=real_acks, link_secrets=["new-real", "dev-link-secret"])
    with pytest.raises(ValidationError, match=r"ack_secrets\[edi\]"):
        Settings(environment="production", link_secrets=["real"], ack_secrets={"edi": ["x" * 32, "dev-ack-secret"]})
    with pytest.raises(ValidationError, match="1 or 2"):
        Settings(ack_secrets={"edi": ["a", "b", "c"]})
    with pytest.raises(ValidationError, match="time_travel"):
        Settings(environment="production", link_secrets=["real"], ack_secrets=real_acks, admin_token="real",
                 time_travel=True)
    settings = Settings(environment="production", link_secrets=["real"], ack_secrets=real_acks, admin_token="real")
    assert settings.ack_secrets == real_acks
    assert Settings().link_secrets == ["dev-link-secret"]  # development keeps its dev defaults

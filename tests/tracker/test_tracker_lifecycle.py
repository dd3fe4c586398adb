"""Pure rules of the 2026 lifecycle: codes, partner statuses, recipient and payment transitions,
anomalies, arrival order; receipt windows, click classification, page nonces, CSV cells."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from parcours_contracts import DeliveryBounced
from parcours_tracker.domain import journal
from parcours_tracker.domain.clicks import classify_open, issue_nonce, verify_nonce
from parcours_tracker.domain.export import safe_cell
from parcours_tracker.domain.incidents import ReceiptWindow, add_business_days, awaited_proof
from parcours_tracker.domain.status import partner_status, project

MAKERS = {"invoice.received": journal.received, "invoice.unroutable": journal.unroutable,
          "dispatch.requested": journal.dispatch_requested, "invoice.dispatched": journal.dispatched,
          "dispatch.failed": journal.dispatch_failed, "delivery.acked": journal.acked,
          "delivery.bounced": journal.bounced, "link.clicked": journal.clicked, "reminder.due": journal.reminder_due}


def entries(*facts) -> list[journal.Entry]:
    return [fact if isinstance(fact, journal.Entry) else MAKERS[fact.type](fact) for fact in facts]


def action(f, kind: str, minute: float, **detail) -> journal.Entry:
    return journal.Entry(event_id=uuid.uuid4(), kind=kind, occurred_at=f.start + timedelta(minutes=minute),
                         detail={"source": "api", **detail})


def payment(f, minute: float, *, fully_paid: bool = True, all_received: bool = True) -> journal.Entry:
    return action(f, journal.PAYMENT, minute, fully_paid=fully_paid, all_received=all_received, amount="1200.00")


def bounce(f, minute: float, permanent: bool = True, dispatch_id=None) -> DeliveryBounced:
    return DeliveryBounced(tenant_id=f.tenant_id, invoice_id=f.invoice_id, correlation_id=f.correlation_id,
                           occurred_at=f.start + timedelta(minutes=minute), dispatch_id=dispatch_id or f.dispatch_id,
                           channel="email_link", recipient="ap@globex.example", permanent=permanent,
                           status="5.1.1", diagnostic="user unknown")


def test_a_whole_lifecycle_with_its_2026_codes(flow):
    f = flow()
    made_available = f.acked(3.5, ack_id="CPP-2").model_copy(update={"status": "MISE_A_DISPOSITION"})
    steps = [(f.received(0), "received", 200), (f.dispatch_requested(1), "queued", 200), (f.dispatched(2), "sent", 201),
             (f.acked(3), "delivered", 202), (made_available, "MISE_A_DISPOSITION", 203), (f.clicked(4), "viewed", 203),
             (action(f, "disputed", 5, reason="wrong quantity"), "EN_LITIGE", 207),
             (action(f, "approved", 6), "APPROUVEE", 205),
             (payment(f, 7, all_received=False), "PAIEMENT_TRANSMIS", 211), (payment(f, 8), "ENCAISSEE", 212)]
    known = []
    for fact, status, code in steps:
        known.append(fact)
        projection = project(entries(*known))
        assert (projection.status, int(projection.code)) == (status, code)
        assert projection.status_at == entries(fact)[0].occurred_at
        assert projection.anomalies == ()
    assert (projection.source, projection.viewed_at) == ("api", f.clicked(4).occurred_at)


@pytest.mark.parametrize("later_kind, from_status", [
    ("approved", "ENCAISSEE"), ("refused", "ENCAISSEE"), ("disputed", "ENCAISSEE"),
])
def test_transitions_after_payment_are_anomalies_not_applied(flow, later_kind, from_status):
    f = flow()
    late = action(f, later_kind, 10, reason="x")
    projection = project(entries(f.received(0), f.dispatched(2), payment(f, 5), late))
    assert (projection.status, projection.status_at) == ("ENCAISSEE", payment(f, 5).occurred_at)
    [anomaly] = projection.anomalies
    assert (anomaly.event_id, anomaly.from_status) == (late.event_id, from_status)
    assert anomaly.detail()["to_status"] in ("APPROUVEE", "REFUSEE", "EN_LITIGE")


def test_lifecycle_rules_refuse_what_makes_no_sense(flow):
    f = flow()
    base = [f.received(0), f.dispatched(2)]
    completed_out_of_nowhere = project(entries(*base, action(f, "completed", 3)))
    assert completed_out_of_nowhere.status == "sent" and len(completed_out_of_nowhere.anomalies) == 1
    suspended_then_completed = project(entries(*base, action(f, "suspended", 3, reason="PO missing"),
                                               action(f, "completed", 4), action(f, "approved", 5)))
    assert (suspended_then_completed.status, suspended_then_completed.anomalies) == ("APPROUVEE", ())
    refused = project(entries(*base, action(f, "refused", 3, reason="not ours"), payment(f, 4),
                              action(f, "promise_to_pay", 5, promised_on="2026-12-20")))
    assert refused.status == "REFUSEE"
    assert [a.kind for a in refused.anomalies] == ["payment", "promise_to_pay"]
    promised = project(entries(*base, action(f, "promise_to_pay", 3, promised_on="2026-12-20")))
    assert (promised.status, promised.anomalies) == ("sent", ()), "a promise has no code and changes no status"
    # The same action twice is no transition, and no anomaly.
    twice = project(entries(*base, action(f, "approved", 3), action(f, "approved", 4)))
    assert (twice.status, twice.status_at, twice.anomalies) == ("APPROUVEE", action(f, "x", 3).occurred_at, ())


def test_out_of_order_arrival_gives_the_same_lifecycle(flow):
    f = flow()
    facts = entries(f.received(0), f.dispatch_requested(1), f.dispatched(2), f.acked(3),
                    action(f, "disputed", 4, reason="price"), action(f, "approved", 5), payment(f, 6),
                    action(f, "approved", 7))
    expected = project(facts)
    assert expected.status == "ENCAISSEE"
    assert [(a.kind, a.from_status) for a in expected.anomalies] == [("approved", "ENCAISSEE")]
    for order in itertools.islice(itertools.permutations(facts), 0, 40320, 97):
        assert project(order) == expected
    # An approval that happened before the payment but arrives after it is no anomaly.
    late_but_earlier = entries(f.received(0), f.dispatched(2), payment(f, 6), action(f, "approved", 5))
    assert (project(late_but_earlier).status, project(late_but_earlier).anomalies) == ("ENCAISSEE", ())


def test_delivery_facts_never_move_a_recipient_status_back(flow):
    f = flow()
    projection = project(entries(f.received(0), f.dispatched(2), action(f, "approved", 3),
                                 f.dispatched(4, dispatch_id=uuid.uuid4()), f.failed(5, dispatch_id=uuid.uuid4())))
    assert (projection.status, projection.anomalies) == ("APPROUVEE", ())


@pytest.mark.parametrize("raw, status", [
    ("received", "delivered"), ("MISE_A_DISPOSITION", "MISE_A_DISPOSITION"), ("mise-a-disposition", "MISE_A_DISPOSITION"),
    ("203", "MISE_A_DISPOSITION"), ("DEPOSEE", "delivered"), ("SERVICE_FAIT", "APPROUVEE"), ("207", "EN_LITIGE"),
    ("MISE_EN_PAIEMENT", "PAIEMENT_TRANSMIS"), ("REJETEE", "REJETEE"), ("whatever-new", "delivered"),
    ("MDN", "delivered"), ("ab", "delivered"), ("IP", "PRISE_EN_CHARGE"), ("UQ", "SUSPENDUE"),
    ("CA", "APPROUVEE_PARTIELLEMENT"), ("RE", "REFUSEE"), ("AP", "APPROUVEE"), ("PD", "PAIEMENT_TRANSMIS"),
])
def test_partner_statuses_map_onto_the_lifecycle(raw, status):
    assert partner_status(raw) == status


def test_a_partner_business_status_is_a_transition_too(flow):
    f = flow()
    disputed = f.acked(3).model_copy(update={"status": "EN_LITIGE"})
    rejected_late = f.acked(4, ack_id="A2").model_copy(update={"status": "REJETEE"})
    projection = project(entries(f.received(0), f.dispatched(2), disputed, rejected_late))
    assert (projection.status, projection.source) == ("EN_LITIGE", "edi")
    assert [a.to_status for a in projection.anomalies] == ["REJETEE"]


def test_bounces(flow):
    f = flow()
    base = [f.received(0), f.dispatch_requested(1), f.dispatched(2)]
    assert project(entries(*base, bounce(f, 3, permanent=False))).status == "sent", "a soft bounce may still arrive"
    hard = project(entries(*base, bounce(f, 3)))
    assert (hard.status, hard.code, hard.reason, hard.incident.kind) == ("bounced", None, "user unknown", "bounced")
    other = uuid.uuid4()
    retried = project(entries(*base, bounce(f, 3), f.dispatch_requested(4, other, channel="postal")))
    assert (retried.status, retried.incident) == ("queued", None)
    assert project(entries(*base, bounce(f, 3), f.clicked(5))).status == "viewed", "a person read it after all"


def test_business_days_skip_weekends_and_holidays():
    friday = datetime(2026, 12, 18, 15, 0, tzinfo=timezone.utc)
    assert add_business_days(friday, 2) == datetime(2026, 12, 22, 15, 0, tzinfo=timezone.utc)
    assert add_business_days(friday, 2, holidays={date(2026, 12, 21)}) == datetime(2026, 12, 23, 15, 0,
                                                                                     tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        ReceiptWindow(hours=1, business_days=2)


def test_the_awaited_proof_depends_on_the_channel(flow):
    f = flow()
    windows = {"email_link": ReceiptWindow(business_days=2, proof="view"), "edi": ReceiptWindow(hours=1, proof="ack")}
    facts = entries(f.received(0), f.dispatched(2))
    awaited = awaited_proof(facts, project(facts), windows)
    assert (awaited.channel, awaited.proof, awaited.dispatch_id) == ("email_link", "view", f.dispatch_id)
    assert awaited.expect_by - f.dispatched(2).occurred_at >= timedelta(days=2)
    viewed = entries(f.received(0), f.dispatched(2), f.clicked(9))
    assert awaited_proof(viewed, project(viewed), windows) is None
    approved = entries(f.received(0), f.dispatched(2), action(f, "approved", 9))
    assert awaited_proof(approved, project(approved), windows) is None, "a recipient action proves receipt"
    bounced = entries(f.received(0), f.dispatched(2), bounce(f, 3))
    assert awaited_proof(bounced, project(bounced), windows) is None, "the bounce incident already says it"
    assert awaited_proof(facts, project(facts), {"edi": windows["edi"]}) is None, "no window for the channel"


@pytest.mark.parametrize("agent, seconds, kind", [
    ("Mozilla/5.0 (Macintosh) Safari/605.1.15", 3600, "opened"),
    ("Mozilla/5.0 (Macintosh) Safari/605.1.15", None, "opened"),
    ("Mozilla/5.0 (Macintosh) Safari/605.1.15", 2.5, "opened_by_machine"),
    ("Mozilla/5.0 (compatible; BingPreview/1.0b)", 3600, "opened_by_machine"),
    ("Microsoft Office Existence Discovery", 3600, "opened_by_machine"),
    ("python-requests/2.32", 3600, "opened_by_machine"),
    (None, 3600, "opened_by_machine"),
])
def test_open_classification(agent, seconds, kind):
    assert classify_open(user_agent=agent, seconds_after_dispatch=seconds, prefetch_seconds=10)[0] == kind


def test_page_nonces_are_bound_to_their_link_signed_and_short_lived():
    nonce = issue_nonce("s1", token="tok", now=1_800_000_000)
    assert verify_nonce(["s0", "s1"], token="tok", nonce=nonce, now=1_800_000_100)
    assert not verify_nonce(["s1"], token="other", nonce=nonce, now=1_800_000_100)
    assert not verify_nonce(["s2"], token="tok", nonce=nonce, now=1_800_000_100)
    assert not verify_nonce(["s1"], token="tok", nonce=nonce, now=1_800_000_000 + 2 * 86400)
    assert not verify_nonce(["s1"], token="tok", nonce="x.y", now=1_800_000_000)


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"), ("+33 1 23", "'+33 1 23"), ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("F-2026-1", "F-2026-1"), (None, ""), (203, "203"),
])
def test_csv_cells_cannot_run_as_formulas(value, cell):
    assert safe_cell(value) == cell


def test_every_chorus_pro_status_the_channel_publishes_keeps_its_2026_code():
    """The chorus_pro adapter publishes DeliveryAcked with the 2026 name of each Chorus Pro history status;
    the tracker reads each as that code. DEPOSEE on Chorus Pro means the buyer's platform has it: 202 for us."""
    from parcours_channels.domain.chorus_pro import HISTORY
    from parcours_tracker.domain.status import CODES

    for lifecycle in {status for status in HISTORY.values() if status is not None}:
        expected = lifecycle if lifecycle.name != "DEPOSEE" else lifecycle.RECUE
        assert CODES[partner_status(lifecycle.name)] == expected, lifecycle


def test_a_chorus_pro_history_then_the_bank_reach_212_without_anomalies(flow):
    f = flow()
    dispatched = f.dispatched(2).model_copy(update={"channel": "chorus_pro"})
    history = ["DEPOSEE", "MISE_A_DISPOSITION", "PRISE_EN_CHARGE", "SUSPENDUE", "COMPLETEE", "APPROUVEE",
               "PAIEMENT_TRANSMIS", "PAIEMENT_TRANSMIS"]  # MANDATEE then MISE_EN_PAIEMENT
    acks = [f.acked(3 + i, ack_id=f"CPP-1:{status}").model_copy(update={"channel": "chorus_pro", "status": status})
            for i, status in enumerate(history)]
    windows = {"chorus_pro": ReceiptWindow(hours=24, proof="made_available")}
    deposited = entries(f.received(0), dispatched, acks[0])
    assert project(deposited).status == "delivered"
    assert awaited_proof(deposited, project(deposited), windows).proof == "made_available", "deposited is not enough"
    made_available = entries(f.received(0), dispatched, *acks[:2])
    assert awaited_proof(made_available, project(made_available), windows) is None
    codes = [project(entries(f.received(0), dispatched, *acks[:n])).code for n in range(1, len(acks) + 1)]
    assert codes == [202, 203, 204, 208, 209, 205, 211, 211]
    paid = project(entries(f.received(0), dispatched, *acks, payment(f, 30)))
    assert (paid.status, paid.code, paid.anomalies) == ("ENCAISSEE", 212, ())


def test_opens_never_move_the_projection(flow):
    """Why link opens are appended without re-projecting (parcours_tracker.opens), once the invoice has a status
    other than pending (whose status_at is its earliest fact, an open or not)."""
    f = flow()
    facts = entries(f.received(0), f.dispatched(2), f.clicked(9))
    opens = [journal.Entry(event_id=uuid.uuid4(), kind=kind, occurred_at=f.start + timedelta(minutes=minute))
             for kind, minute in ((journal.OPENED, 1), (journal.OPENED_BY_MACHINE, 3), (journal.OPENED, 12))]
    for cut in range(1, len(facts) + 1):
        assert project(facts[:cut] + opens) == project(facts[:cut])

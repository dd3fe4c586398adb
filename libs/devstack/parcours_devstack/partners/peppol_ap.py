"""A Peppol access point's REST API (our side, C2), for tests and `make run`.

`POST /v1/documents` (Bearer API key, `Idempotency-Key`) takes {sender, receiver (both
`iso6523-actorid-upis::<scheme>:<id>`), document_type_id, process_id, document (base64 UBL),
reference}; it checks the receiver is registered (404 otherwise) and the document against the
Peppol BIS Billing 3.0 rules an access point checks before sending (422 with the rule ids), then
answers `202 {"transmission_id"}`. A repeated Idempotency-Key answers the first transmission.
What happens next is a list of events per transmission: `transport.receipt` (the receiving access
point's AS4 receipt), `invoice.response` (the buyer's code: AB, IP, UQ, CA, RE, AP, PD),
`transport.failed`; read by `GET /v1/documents/{id}/events`, and pushed, when a webhook is set,
signed `X-Peppol-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

Steering: `fail_next(n)` (503), `hold()` (take, then keep the answer until released), `reject_next`
(the receiver answers RE without a receipt), `silent_next` (no receipt ever), `respond(id, code)`;
`auto_responses` are sent after the receipt of every transmission."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from lxml import etree

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
SCHEME = "iso6523-actorid-upis::"
_NS = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


@dataclass
class Transmission:
    id: str
    sender: str
    receiver: str
    number: str
    document: bytes
    events: list[dict[str, Any]] = field(default_factory=list)


class PeppolAccessPoint:
    def __init__(self, *, api_key: str | None = None, webhook_url: str | None = None, webhook_secret: str | None = None,
                 receivers: set[str] | None = None, auto_responses: tuple[str, ...] = ()) -> None:
        """`receivers`: participant ids (scheme:id) registered in the SMP; None: everyone."""
        self.api_key = api_key or secrets.token_urlsafe(16)
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.receivers, self.auto_responses = receivers, auto_responses
        self.transmissions: dict[str, Transmission] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.posts = 0  # every POST, refused and repeated ones included
        self.webhooks: list[int] = []  # the status of each webhook call
        self._failures = 0
        self._reject: str | None = None
        self._silent = False
        self._hold: asyncio.Event | None = None
        self.held = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    def fail_next(self, times: int = 1) -> None:
        self._failures = times

    def reject_next(self, reason: str = "Receiver unknown to the buyer's ERP") -> None:
        self._reject = reason

    def silent_next(self) -> None:
        """The next transmission is taken but never delivered (no receipt, no response)."""
        self._silent = True

    def hold(self) -> asyncio.Event:
        """Take the next document, then keep its answer until the returned event is set."""
        self._hold = asyncio.Event()
        self.held.clear()
        return self._hold

    async def respond(self, transmission_id: str, code: str, reason: str | None = None) -> None:
        """The buyer's Invoice Response for a transmission."""
        await self._event(self.transmissions[transmission_id], "invoice.response", code=code, reason=reason)

    def app(self) -> FastAPI:
        app = FastAPI(title="Peppol access point simulator")

        @app.post("/v1/documents")
        async def send(request: Request):
            if not self._authorised(request):
                return JSONResponse({"title": "Unauthorized"}, status_code=401)
            self.posts += 1
            if self._failures > 0:
                self._failures -= 1
                return JSONResponse({"title": "Service Unavailable"}, status_code=503)
            key = request.headers.get("idempotency-key")
            if key and key in self.by_idempotency_key:
                return JSONResponse({"transmission_id": self.by_idempotency_key[key], "status": "accepted"})
            try:
                body = await request.json()
                document = base64.b64decode(body["document"], validate=True)
                sender, receiver = str(body["sender"]), str(body["receiver"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                return _problem(400, "sender, receiver and document (base64) are required")
            if not sender.startswith(SCHEME) or not receiver.startswith(SCHEME):
                return _problem(400, f"participant ids are {SCHEME}<scheme>:<id>")
            sender, receiver = sender[len(SCHEME):], receiver[len(SCHEME):]
            if self.receivers is not None and receiver not in self.receivers:
                return _problem(404, f"receiver {receiver} is not registered in the Peppol SMP")
            errors, number = _check(document, sender=sender, receiver=receiver)
            if errors:
                return _problem(422, "the document breaks Peppol BIS Billing 3.0 rules", errors=errors)
            transmission = Transmission(id=f"tx-{len(self.transmissions) + 1:06d}-{secrets.token_hex(4)}",
                                        sender=sender, receiver=receiver, number=number, document=document)
            self.transmissions[transmission.id] = transmission
            if key:
                self.by_idempotency_key[key] = transmission.id
            self._deliver_later(transmission)
            if self._hold is not None:
                hold, self._hold = self._hold, None
                self.held.set()
                await hold.wait()
            return JSONResponse({"transmission_id": transmission.id, "status": "accepted"}, status_code=202)

        @app.get("/v1/documents/{transmission_id}/events")
        async def events(transmission_id: str, request: Request):
            if not self._authorised(request):
                return JSONResponse({"title": "Unauthorized"}, status_code=401)
            transmission = self.transmissions.get(transmission_id)
            if transmission is None:
                return _problem(404, "no such transmission")
            return {"events": transmission.events}

        @app.get("/simulator/state")
        async def state():
            return {"posts": self.posts, "transmissions": [
                {"id": t.id, "number": t.number, "receiver": t.receiver, "events": [e["type"] + ":" + (e.get("code") or "")
                                                                                    for e in t.events]}
                for t in self.transmissions.values()]}

        return app

    def _deliver_later(self, transmission: Transmission) -> None:
        reject, self._reject = self._reject, None
        silent, self._silent = self._silent, False

        async def deliver() -> None:
            await asyncio.sleep(0.05)  # the AS4 exchange with the receiving access point
            if silent:
                return
            if reject is not None:
                await self._event(transmission, "invoice.response", code="RE", reason=reject)
                return
            await self._event(transmission, "transport.receipt")
            for code in self.auto_responses:
                await self._event(transmission, "invoice.response", code=code)

        task = asyncio.create_task(deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _event(self, transmission: Transmission, kind: str, **values: Any) -> None:
        event = {"id": f"ev-{secrets.token_hex(6)}", "transmission_id": transmission.id, "type": kind,
                 "at": datetime.now(timezone.utc).isoformat(), **{k: v for k, v in values.items() if v is not None}}
        transmission.events.append(event)
        if self.webhook_url and self.webhook_secret:
            body = json.dumps(event).encode()
            timestamp = str(int(time.time()))
            signature = hmac.new(self.webhook_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.post(self.webhook_url, content=body, headers={
                        "Content-Type": "application/json", "X-Peppol-Signature": f"t={timestamp},v1={signature}"})
                self.webhooks.append(response.status_code)
            except httpx.HTTPError:
                self.webhooks.append(0)  # the receiver polls: nothing is lost

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.api_key.encode())


def _check(document: bytes, *, sender: str, receiver: str) -> tuple[list[dict[str, str]], str]:
    """The Peppol BIS rules an access point checks before sending; (errors, invoice number)."""
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError:
        return [{"rule": "XML", "message": "not well-formed"}], ""
    errors = []

    def rule(name: str, ok: bool, message: str) -> None:
        if not ok:
            errors.append({"rule": name, "message": message})

    text = lambda path: (root.findtext(path, namespaces=_NS) or "").strip()  # noqa: E731
    rule("PEPPOL-EN16931-R001", text("cbc:ProfileID") == PROFILE_ID, "Business process MUST be provided")
    rule("PEPPOL-EN16931-R004", text("cbc:CustomizationID") == CUSTOMIZATION_ID, "Specification identifier MUST be "
                                                                                  "the Peppol BIS Billing 3.0 one")
    rule("PEPPOL-EN16931-R002", len(root.findall("cbc:Note", _NS)) <= 1, "No more than one note on document level")
    rule("PEPPOL-EN16931-R003", bool(text("cbc:BuyerReference") or text("cac:OrderReference/cbc:ID")),
         "A buyer reference or purchase order reference MUST be provided")
    for role, party, expected in (("seller", "cac:AccountingSupplierParty/cac:Party", sender),
                                  ("buyer", "cac:AccountingCustomerParty/cac:Party", receiver)):
        endpoint = root.find(f"{party}/cbc:EndpointID", _NS)
        code = "R020" if role == "seller" else "R010"
        rule(f"PEPPOL-EN16931-{code}", endpoint is not None and bool(endpoint.get("schemeID")),
             f"The {role}'s electronic address MUST be provided, with its scheme")
        if endpoint is not None:
            rule("PEPPOL-ENVELOPE", f"{endpoint.get('schemeID')}:{(endpoint.text or '').strip()}" == expected,
                 f"the {role}'s EndpointID is not the envelope's participant id {expected}")
    return errors, text("cbc:ID")


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "status": status, "detail": detail, **extra}, status_code=status,
                        media_type="application/problem+json")

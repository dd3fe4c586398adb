"""`peppol`: the invoice as Peppol BIS Billing 3.0 (ingest's UBL, made Peppol), handed to our access
point's REST API for the receiver's participant id. The receiving access point's transport receipt
is `delivery.acked` RECEIVED; the buyer's Invoice Responses (AB, IP, UQ, CA, RE, AP, PD) follow as
`delivery.acked` with their code, learnt by signed webhook or by polling (`follow_up.py`)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import httpx
from pydantic import BaseModel, Field, ValidationError

from parcours_channels.adapters import PartnerUnavailable
from parcours_channels.adapters.documents import DocumentSettings, fetch_ubl
from parcours_channels.adapters.partner_once import Accepted, PartnerRefused, submit_once
from parcours_channels.domain.outcome import DeliveryResult
from parcours_channels.domain.peppol import (
    PARTICIPANT_SCHEME, PROCESS_ID, ApEvent, PeppolDocument, PeppolSettings, Refused, peppol_bis,
)
from parcours_channels.store.partner_submissions import PartnerSubmission
from parcours_contracts import DispatchRequested
from parcours_runtime.service import ServiceContext

CHANNEL = "peppol"
PARTNER = "access-point"


class _Transmission(BaseModel):
    transmission_id: str = Field(min_length=1, max_length=200)


class _Events(BaseModel):
    events: list[ApEvent]


class AccessPoint:
    """Our Peppol access point's REST API (services/channels/README.md, "peppol")."""

    def __init__(self, http: httpx.AsyncClient, settings: PeppolSettings) -> None:
        self.http, self.settings = http, settings

    async def send(self, document: PeppolDocument, *, reference: str) -> str:
        """POST the document; the transmission id. PartnerRefused for a refusal, transient errors raise."""
        body = {"sender": f"{PARTICIPANT_SCHEME}::{document.sender}",
                "receiver": f"{PARTICIPANT_SCHEME}::{document.receiver}",
                "document_type_id": document.document_type, "process_id": PROCESS_ID,
                "document": base64.b64encode(document.xml).decode(), "reference": reference}
        response = await self._call("POST", "/v1/documents", json=body, headers={"Idempotency-Key": reference})
        if response.status_code in (404, 409, 413, 422) or response.status_code == 400:
            raise PartnerRefused(f"the access point refused the document ({response.status_code}): {_reason(response)}")
        try:
            return _Transmission.model_validate_json(response.content).transmission_id
        except ValidationError:
            raise PartnerUnavailable("the access point accepted without a transmission id") from None

    async def events(self, transmission_id: str) -> list[ApEvent]:
        """Everything the access point learnt about a transmission so far."""
        response = await self._call("GET", f"/v1/documents/{transmission_id}/events")
        if response.status_code != 200:
            raise PartnerUnavailable(f"the access point answered {response.status_code} for events")
        try:
            return _Events.model_validate_json(response.content).events
        except ValidationError:
            raise PartnerUnavailable("the access point's events are malformed") from None

    async def _call(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs) -> httpx.Response:
        url = f"{self.settings.ap_url.rstrip('/')}{path}"
        headers = {**(headers or {}), "Authorization": f"Bearer {self.settings.api_key.get_secret_value()}"}
        try:
            response = await self.http.request(method, url, headers=headers, timeout=self.settings.timeout_seconds,
                                               **kwargs)
        except httpx.HTTPError as exc:
            raise PartnerUnavailable(f"the access point is unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code in (401, 403, 408, 429):
            raise PartnerUnavailable(f"the access point answered {response.status_code}")
        return response


class PeppolAdapter:
    name = CHANNEL

    async def deliver(self, request: DispatchRequested, ctx: ServiceContext) -> DeliveryResult:
        """Hand the document to the access point once (Idempotency-Key: the dispatch id)."""
        settings: PeppolSettings = ctx.settings.peppol
        access_point = AccessPoint(ctx.http, settings)

        async def submit(row: PartnerSubmission) -> Accepted:
            if not settings.configured:
                raise PartnerRefused("Peppol is not configured (PARCOURS_CHANNELS_PEPPOL)")
            ubl = await fetch_ubl(ctx.http, request, DocumentSettings.of(ctx.settings))
            try:
                document = peppol_bis(ubl, customer_ref=request.invoice.customer_ref, sender_id=settings.sender_id,
                                      receiver_id=settings.receivers.get(request.invoice.customer_ref))
            except Refused as refused:
                raise PartnerRefused(str(refused)) from None
            transmission = await access_point.send(document, reference=str(request.dispatch_id))
            return Accepted(partner_ref=transmission, last_status="accepted",
                            next_check_at=datetime.now(timezone.utc) + timedelta(seconds=settings.first_check_seconds),
                            detail={"sender": document.sender, "receiver": document.receiver, "seen": [],
                                    "fallback_channels": list(request.fallback_channels)})

        return await submit_once(request, ctx, partner=PARTNER, submit=submit)

    def background_jobs(self, ctx: ServiceContext) -> list:
        from parcours_channels.adapters.peppol.follow_up import PeppolFollowUp

        if not ctx.settings.peppol.configured:
            return []
        return [PeppolFollowUp(ctx)]


def _reason(response: httpx.Response) -> str:
    """The access point's own words (problem+json detail and the rules it names), short."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if not isinstance(body, dict):
        return response.reason_phrase
    detail = str(body.get("detail") or body.get("title") or response.reason_phrase)[:500]
    rules = [str(error.get("rule")) for error in body.get("errors", []) if isinstance(error, dict) and error.get("rule")]
    return f"{detail} [{', '.join(rules[:10])}]" if rules else detail

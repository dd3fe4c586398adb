"""`ap_platform`: push the invoice to the buyer's AP platform over its REST API (OAuth2 or API
key, per-partner field mapping). The platform's acknowledgement comes later as a signed webhook
to the tracker (`POST /v1/acks/ap_platform`), which turns it into `delivery.acked`."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from pydantic import BaseModel, Field, ValidationError

from parcours_channels.adapters import PartnerUnavailable
from parcours_channels.adapters.documents import Document, DocumentSettings, fetch_document
from parcours_channels.adapters.oauth import ClientCredentials
from parcours_channels.adapters.partner_once import Accepted, PartnerRefused, submit_once
from parcours_channels.domain.ap_platform import ApiKeyAuth, ApPartner, choose_partner, partner_body, value_at
from parcours_channels.domain.outcome import DeliveryResult
from parcours_channels.store.partner_submissions import PartnerSubmission
from parcours_contracts import DispatchRequested
from parcours_runtime.service import ServiceContext

CHANNEL = "ap_platform"
_MEDIA_TYPES = {"pdf": "application/pdf", "xml": "application/xml"}


class _Reference(BaseModel):
    value: str = Field(min_length=1, max_length=200)


class ApPlatformAdapter:
    name = CHANNEL

    def __init__(self) -> None:
        self._credentials: dict[str, ClientCredentials] = {}

    async def deliver(self, request: DispatchRequested, ctx: ServiceContext) -> DeliveryResult:
        """Push once to the partner serving the recipients; its webhook acknowledges later."""
        partners: dict[str, ApPartner] = ctx.settings.ap_platform_partners
        name = choose_partner({n: p.recipient_domains for n, p in partners.items()},
                              [r.email.rsplit("@", 1)[-1] for r in request.recipients])
        if name is None:
            return DeliveryResult.failed(f"{CHANNEL}: no configured AP platform serves "
                                         f"{', '.join(r.email for r in request.recipients)}")
        partner = partners[name]

        async def submit(row: PartnerSubmission) -> Accepted:
            document = await fetch_document(ctx.http, request, DocumentSettings.of(ctx.settings))
            body = partner_body(partner.mapping, _values(request, document))
            answer = await self._post(ctx.http, name, partner, body, idempotency_key=str(request.dispatch_id))
            try:
                reference = _Reference(value=value_at(answer, partner.reference_field))
            except ValidationError:
                raise PartnerUnavailable(f"{name} accepted without a usable {partner.reference_field!r}") from None
            return Accepted(partner_ref=reference.value, last_status="submitted", detail={"partner": name})

        return await submit_once(request, ctx, partner=name, submit=submit)

    async def _post(self, http: httpx.AsyncClient, name: str, partner: ApPartner, body: dict[str, Any], *,
                    idempotency_key: str) -> Any:
        url = f"{partner.base_url.rstrip('/')}{partner.submit_path}"
        for attempt in (1, 2):
            headers = await self._auth_headers(http, name, partner, renew=attempt == 2)
            if partner.idempotency_header:
                headers[partner.idempotency_header] = idempotency_key
            try:
                response = await http.post(url, json=body, headers=headers, timeout=partner.timeout_seconds)
            except httpx.HTTPError as exc:
                raise PartnerUnavailable(f"{name} unreachable: {type(exc).__name__}") from None
            if response.status_code == 401 and attempt == 1 and not isinstance(partner.auth, ApiKeyAuth):
                continue
            break
        if response.status_code >= 500 or response.status_code in (401, 403, 408, 429):
            raise PartnerUnavailable(f"{name} answered {response.status_code}")
        if response.status_code >= 400:
            raise PartnerRefused(f"{name} refused the invoice ({response.status_code}): {_reason(response)}")
        try:
            return response.json()
        except ValueError:
            raise PartnerUnavailable(f"{name} answered {response.status_code} without JSON") from None

    async def _auth_headers(self, http: httpx.AsyncClient, name: str, partner: ApPartner, *, renew: bool) -> dict[str, str]:
        auth = partner.auth
        if isinstance(auth, ApiKeyAuth):
            return {auth.header: auth.key.get_secret_value()}
        if name not in self._credentials:
            self._credentials[name] = ClientCredentials(
                http, token_url=auth.token_url, client_id=auth.client_id,
                client_secret=auth.client_secret.get_secret_value(), scope=auth.scope, timeout=partner.timeout_seconds)
        return {"Authorization": f"Bearer {await self._credentials[name].bearer(renew=renew)}"}


def _values(request: DispatchRequested, document: Document) -> dict[str, Any]:
    invoice = request.invoice
    return {
        "tenant_id": request.tenant_id, "invoice_id": str(request.invoice_id), "dispatch_id": str(request.dispatch_id),
        "number": invoice.number, "type_code": invoice.type_code, "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(), "currency": invoice.currency,
        "total_excl_tax": str(invoice.total_excl_tax), "total_tax": str(invoice.total_tax),
        "total_incl_tax": str(invoice.total_incl_tax), "seller_name": invoice.seller_name,
        "buyer_name": invoice.buyer_name, "customer_ref": invoice.customer_ref, "recipient": request.recipients[0].email,
        "document_base64": base64.b64encode(document.content).decode(),
        "document_name": f"{invoice.number}.{document.extension}", "document_media_type": _MEDIA_TYPES[document.extension],
        "document_syntax": document.syntax,
    }


def _reason(response: httpx.Response) -> str:
    """The partner's own words (problem+json detail, message, error), short; never our request."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "message", "error", "title"):
            if isinstance(body.get(key), str):
                return body[key][:500]
    return response.reason_phrase

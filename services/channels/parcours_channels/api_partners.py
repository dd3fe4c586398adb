"""What delivery partners tell channels later, over HTTP: the Peppol access point's signed event
webhook, AS2 partners' asynchronous MDNs. Partners authenticate by signature, not by a tenant's API key: the submission they name
says whose invoice it is."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError

from parcours_channels.adapters.edi.as2 import raw_http
from parcours_channels.adapters.edi.mdn import record_async_mdn
from parcours_channels.adapters.peppol import CHANNEL as PEPPOL
from parcours_channels.adapters.peppol.follow_up import record_events, signature_valid
from parcours_channels.domain.peppol import ApEvent
from parcours_channels.store.partner_submissions import submission_by_ref
from parcours_runtime.problems import Problem, field_error

router = APIRouter(tags=["partners"])  # under api.router's /v1
MAX_BODY = 256 * 1024
_EVENTS = TypeAdapter(list[ApEvent])


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Problem(413, f"At most {MAX_BODY} bytes.")
    return body


@router.post("/peppol/events", status_code=204, summary="The Peppol access point's events (signed webhook)",
             responses={401: {"description": "Bad or stale signature"}, 404: {"description": "Unknown transmission"},
                        422: {"description": "Not an event"}})
async def peppol_events(request: Request) -> Response:
    """One event or a list, signed `X-Peppol-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
    Each event is applied once (a replay changes nothing)."""
    settings = request.app.state.ctx.settings.peppol
    body = await _body(request)
    if not signature_valid(settings.webhook_secrets(),
                           header=request.headers.get("x-peppol-signature", ""), body=body):
        raise Problem(401, "Sign the body with the webhook secret: X-Peppol-Signature: t=<unix>,v1=<hex>.")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise Problem(400, "The body is not JSON.") from None
    try:
        events = _EVENTS.validate_python(parsed if isinstance(parsed, list) else [parsed])
    except ValidationError as exc:
        raise Problem(422, "Not a Peppol access point event.", errors=[
            field_error(list(error["loc"])[0 if isinstance(parsed, list) else 1:], error["msg"])
            for error in exc.errors()[:20]]) from None
    ctx = request.app.state.ctx
    by_transmission: dict[str, list[ApEvent]] = {}
    for event in events:
        by_transmission.setdefault(event.transmission_id, []).append(event)
    rows = {}
    async with ctx.sessions() as session:
        for transmission in by_transmission:
            row = await submission_by_ref(session, channel=PEPPOL, partner_ref=transmission)
            if row is None:
                raise Problem(404, f"No Peppol transmission {transmission} here.",
                              errors=[field_error(["transmission_id"], "unknown transmission", "unknown")])
            rows[transmission] = row.dispatch_id
    for transmission, dispatch_id in rows.items():
        await record_events(ctx, dispatch_id, by_transmission[transmission])
    return Response(status_code=204)


@router.post("/as2/mdn", summary="An AS2 partner's asynchronous MDN (signed, RFC 4130)",
             responses={400: {"description": "Not an MDN, or not one we can trust"},
                        404: {"description": "No message of ours awaits it"},
                        503: {"description": "The message it answers is still being recorded: send it again"}})
async def as2_mdn(request: Request) -> Response:
    """The MDN of a message sent to a partner in async mode: signature and MIC checked, then the
    submission it answers settled once (delivery.acked MDN, or dispatch.failed for an error MDN)."""
    outcome = await record_async_mdn(request.app.state.ctx, raw_http(request.headers, await _body(request)))
    if outcome.status >= 400:
        raise Problem(outcome.status, outcome.detail, headers={"Retry-After": "1"} if outcome.status == 503 else None)
    return Response(outcome.detail, status_code=outcome.status, media_type="text/plain")

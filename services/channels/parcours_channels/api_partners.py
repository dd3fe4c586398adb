"""What delivery partners tell channels later, over HTTP: the Peppol access point's signed event
webhook. Partners authenticate by signature, not by a tenant's API key: the submission they name
says whose invoice it is."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError

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
    if not signature_valid(settings.webhook_secret.get_secret_value(),
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

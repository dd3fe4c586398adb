"""Partner acknowledgement webhooks (`POST /v1/acks/{channel}`): signed, replay-safe, mapped onto the lifecycle."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parcours_contracts import DeliveryAcked
from parcours_contracts.events import UtcDatetime
from parcours_runtime.problems import Problem, field_error
from parcours_runtime.uow import UnitOfWork
from parcours_tracker.domain import journal
from parcours_tracker.domain.acks import AckRejected, fingerprint, verify_ack
from parcours_tracker.store import journeys, proofs

router = APIRouter(tags=["partner acks"])

class AckBody(BaseModel):
    """What a partner posts to acknowledge technical receipt of an invoice."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(min_length=1, max_length=64)
    invoice_id: UUID
    ack_id: str = Field(min_length=1, max_length=200, description="The partner's id of this ack; replays reuse it.")
    status: str = Field(default="received", min_length=1, max_length=64,
                        description="The partner's status: received, MISE_A_DISPOSITION, a 2026 code (203) or name, "
                                    "Chorus Pro statuses… (mapping in the README); unknown words mean received.")
    acked_at: UtcDatetime | None = Field(default=None, description="When the partner received it; default now.")


def _parse_ack(body: bytes, *, now: datetime, tolerance_seconds: int) -> AckBody:
    try:
        ack = AckBody.model_validate_json(body)
    except ValidationError as exc:
        errors = [field_error(list(err["loc"]), err["msg"], err["type"]) for err in exc.errors()]
        raise Problem(422, "The ack body does not match the expected schema.", errors=errors) from None
    if ack.acked_at is not None and ack.acked_at > now + timedelta(seconds=tolerance_seconds):
        raise Problem(422, "The ack body does not match the expected schema.",
                      errors=[field_error(["acked_at"], "acked_at is in the future", "future")])
    return ack


async def read_body(request: Request, limit: int, what: str = "An ack body") -> bytes:
    """The raw body, refused with 413 as soon as it grows past `limit` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"{what} is at most {limit} bytes.")
    return bytes(body)


@router.post(
    "/v1/acks/{channel}", status_code=202, summary="Partner delivery acknowledgement (signed webhook)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": AckBody.model_json_schema()}}}},
    responses={200: {"description": "Identical redelivery of an ack already taken ({\"duplicate\": true})"},
               401: {"description": "Missing or bad signature, or stale timestamp"},
               404: {"description": "Unknown channel, or invoice unknown for that tenant"},
               409: {"description": "This ack id was already used with a different body"}},
)
async def receive_ack(channel: str, request: Request) -> JSONResponse:
    """Take a partner's signed ack: publish DeliveryAcked once per (channel, ack id)."""
    ctx = request.app.state.ctx
    settings = ctx.settings
    secrets = settings.ack_secrets.get(channel)
    if not secrets:
        raise Problem(404, f"No partner channel named {channel!r} sends acks here.", slug="unknown-ack-channel")
    body = await read_body(request, settings.ack_max_body_bytes)
    now = datetime.now(timezone.utc)
    try:
        verify_ack(secrets, timestamp=request.headers.get("x-parcours-timestamp"),
                   signature=request.headers.get("x-parcours-signature"), body=body, now=time.time(),
                   tolerance_seconds=settings.ack_tolerance_seconds)
    except AckRejected as exc:
        raise Problem(401, str(exc), slug="ack-signature-invalid") from None
    ack = _parse_ack(body, now=now, tolerance_seconds=settings.ack_tolerance_seconds)
    meaning = fingerprint({"tenant_id": ack.tenant_id, "invoice_id": str(ack.invoice_id), "status": ack.status,
                           "acked_at": ack.acked_at.isoformat() if ack.acked_at else None})

    async with UnitOfWork(ctx.sessions) as uow:
        invoice = await journeys.find_invoice(uow.session, tenant_id=ack.tenant_id, invoice_id=ack.invoice_id)
        if invoice is None:
            raise Problem(404, "This tenant has no such invoice.")
        acked_at = ack.acked_at or now
        event = DeliveryAcked(tenant_id=ack.tenant_id, invoice_id=ack.invoice_id,
                              correlation_id=invoice.correlation_id, occurred_at=acked_at, channel=channel,
                              ack_id=ack.ack_id, status=ack.status, acked_at=acked_at)
        earlier = await proofs.claim_ack(uow.session, channel=channel, ack_id=ack.ack_id, tenant_id=ack.tenant_id,
                                         invoice_id=ack.invoice_id, fingerprint=meaning, event_id=event.event_id)
        if earlier is not None and earlier.fingerprint == meaning:
            return JSONResponse({"duplicate": True, "ack_id": ack.ack_id, "event_id": str(earlier.event_id)})
        if earlier is not None:
            raise Problem(409, f"Ack id {ack.ack_id!r} was already delivered with a different body.",
                          slug="ack-replayed", title="Ack replayed")
        await journeys.record_event(uow, ctx.extras["tracking"], event=event, entry=journal.acked(event))
        uow.publish(event)
        await uow.commit()
    return JSONResponse({"duplicate": False, "ack_id": ack.ack_id, "event_id": str(event.event_id)}, status_code=202)


"""A simulator of a buyer's AP platform (Yooz/Freedz style supplier-invoice intake).

Its published API: optional `POST /oauth/token` (client credentials) or an API-key header,
then `POST <submit_path>` with a JSON body whose required fields are the platform's own
(`required`: dotted paths, the document's as base64), answering `201 {"<reference_field>": id}`;
an `Idempotency-Key` repeats the first answer instead of taking the invoice twice.
Acknowledgements go out as signed webhooks (HMAC-SHA256 over "<timestamp>.<body>" in
`X-Parcours-Signature`, timestamp in `X-Parcours-Timestamp`), Parcours' published ack format.
Tests steer it: `fail_next`, `refuse_next`, `hold_next`, `ack`; `auto_ack` acks by itself."""

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
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class Received:
    id: str
    body: dict[str, Any]
    acks: list[str] = field(default_factory=list)


def _at(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return None
        body = body[part]
    return body


class ApPlatformSimulator:
    def __init__(self, name: str, *, required: dict[str, str], submit_path: str = "/invoices",
                 reference_field: str = "id", api_key: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, tenant_path: str = "metadata.tenant",
                 invoice_path: str = "metadata.invoice", webhook_url: str | None = None,
                 webhook_secret: str | None = None, auto_ack: bool = False) -> None:
        """`required`: dotted path → "text" or "base64"; `tenant_path`/`invoice_path`: where the
        pushed body carries the Parcours references the webhook echoes."""
        self.name, self.required, self.submit_path, self.reference_field = name, required, submit_path, reference_field
        self.api_key, self.client_id, self.client_secret = api_key, client_id, client_secret
        self.tenant_path, self.invoice_path = tenant_path, invoice_path
        self.webhook_url, self.webhook_secret, self.auto_ack = webhook_url, webhook_secret, auto_ack
        self.documents: dict[str, Received] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.tokens: set[str] = set()
        self.submissions = 0  # POSTs that reached the intake (including refused and repeated ones)
        self._failures: list[int] = []
        self._refusals: list[tuple[int, str]] = []
        self._hold = 0.0
        self._tasks: set[asyncio.Task] = set()

    @property
    def received(self) -> int:
        """Invoices taken (a repeated idempotency key does not count twice)."""
        return len(self.documents)

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        self._failures.extend([status] * n)

    def refuse_next(self, status: int = 422, detail: str = "Supplier unknown to this buyer") -> None:
        self._refusals.append((status, detail))

    def hold_next(self, seconds: float) -> None:
        """Take the next invoice, then answer late (the client may die meanwhile)."""
        self._hold = seconds

    def app(self) -> FastAPI:
        app = FastAPI(title=f"AP platform simulator ({self.name})")

        @app.post("/oauth/token")
        async def token(request: Request):
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if self.client_id is None or form.get("grant_type") != "client_credentials" or (
                    form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            value = secrets.token_urlsafe(24)
            self.tokens.add(value)
            return {"access_token": value, "token_type": "Bearer", "expires_in": 3600}

        @app.post(self.submit_path)
        async def submit(request: Request):
            if not self._authorised(request):
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            self.submissions += 1
            if self._failures:
                return JSONResponse({"error": "temporarily unavailable"}, status_code=self._failures.pop(0))
            key = request.headers.get("idempotency-key")
            if key and key in self.by_idempotency_key:
                return JSONResponse({self.reference_field: self.by_idempotency_key[key], "status": "received"})
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse({"detail": "body is not JSON"}, status_code=400)
            if missing := self._invalid(body):
                return JSONResponse({"detail": f"invalid or missing: {', '.join(missing)}"}, status_code=422)
            if self._refusals:
                status, detail = self._refusals.pop(0)
                return JSONResponse({"detail": detail}, status_code=status)
            document = Received(id=f"{self.name}-{len(self.documents) + 1:06d}", body=body)
            self.documents[document.id] = document
            if key:
                self.by_idempotency_key[key] = document.id
            hold, self._hold = self._hold, 0.0
            if hold:
                await asyncio.sleep(hold)
            if self.auto_ack:
                task = asyncio.create_task(self.ack(document.id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return JSONResponse({self.reference_field: document.id, "status": "received"}, status_code=201)

        @app.get("/simulator/state")
        async def state():
            return {"received": self.received, "submissions": self.submissions,
                    "documents": [{"id": d.id, "acks": d.acks} for d in self.documents.values()]}

        return app

    async def ack(self, document_id: str, status: str = "received") -> httpx.Response:
        """Send the signed acknowledgement webhook for a document taken earlier."""
        if not self.webhook_url or not self.webhook_secret:
            raise RuntimeError(f"{self.name}: no webhook configured")
        document = self.documents[document_id]
        body = json.dumps({"tenant_id": _at(document.body, self.tenant_path),
                           "invoice_id": _at(document.body, self.invoice_path),
                           "ack_id": f"{document_id}:{status}", "status": status}).encode()
        timestamp = str(int(time.time()))
        signature = hmac.new(self.webhook_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(self.webhook_url, content=body, headers={
                "Content-Type": "application/json", "X-Parcours-Timestamp": timestamp,
                "X-Parcours-Signature": f"sha256={signature}"})
        document.acks.append(f"{status}:{response.status_code}")
        return response

    def _authorised(self, request: Request) -> bool:
        if self.api_key is not None:
            return hmac.compare_digest(request.headers.get("x-api-key", "").encode(), self.api_key.encode())
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in self.tokens

    def _invalid(self, body: Any) -> list[str]:
        invalid = []
        for path, kind in self.required.items():
            value = _at(body, path)
            if not isinstance(value, str) or not value:
                invalid.append(path)
            elif kind == "base64":
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    invalid.append(path)
        return invalid

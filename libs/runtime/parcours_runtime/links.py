"""Tracked-link tokens: channels issues one per recipient, tracker verifies it.

token = base64url(JSON claims) "." base64url(HMAC-SHA256(secret, claims part)). The random
nonce makes every token unique and unguessable; the expiry bounds its life. The issue time is
when the message was handed to its transport (channels issues the token as it sends), so the
tracker tells a scanner's prefetch from the token alone. Both services are configured with the
same secret."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from uuid import UUID


class InvalidToken(Exception):
    pass


class ExpiredToken(InvalidToken):
    """Well signed but past its expiry: worth a different answer (410) than a forgery."""


@dataclass(frozen=True)
class LinkClaims:
    tenant_id: str
    invoice_id: UUID
    dispatch_id: UUID
    recipient: str
    expires_at: int
    issued_at: float | None = None  # seconds since the epoch; None in tokens issued before it was a claim


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    """HMAC-SHA256 with the key already absorbed: each token costs a copy and its own bytes."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _sign(secret: str, body: str) -> str:
    mac = _keyed(secret).copy()
    mac.update(body.encode())
    return _b64(mac.digest())


def issue_link_token(secret: str, *, tenant_id: str, invoice_id: UUID, dispatch_id: UUID, recipient: str,
                     ttl_seconds: int = 180 * 86400, now: float | None = None) -> str:
    now = time.time() if now is None else now
    claims = {"t": tenant_id, "i": str(invoice_id), "d": str(dispatch_id), "r": recipient,
              "x": int(now + ttl_seconds), "s": int(now * 1000), "n": secrets.token_urlsafe(12)}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_sign(secret, body)}"


def verify_link_token(secrets_: list[str] | str, token: str, now: float | None = None) -> LinkClaims:
    """Claims of a valid token; raises InvalidToken. Several secrets allow rotation."""
    body, _, signature = token.partition(".")
    if not body or not signature or len(token) > 2048:
        raise InvalidToken("malformed token")
    candidates = [secrets_] if isinstance(secrets_, str) else secrets_
    if not any(hmac.compare_digest(_sign(secret, body), signature) for secret in candidates):
        raise InvalidToken("bad signature")
    try:
        claims = json.loads(_unb64(body))
        parsed = LinkClaims(tenant_id=claims["t"], invoice_id=UUID(claims["i"]), dispatch_id=UUID(claims["d"]),
                            recipient=claims["r"], expires_at=int(claims["x"]),
                            issued_at=int(claims["s"]) / 1000 if "s" in claims else None)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("malformed claims") from exc
    if parsed.expires_at < (now or time.time()):
        raise ExpiredToken("expired")
    return parsed

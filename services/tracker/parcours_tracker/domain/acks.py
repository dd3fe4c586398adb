"""Partner acknowledgement webhooks: how a request is signed, and how it is checked.

A partner sends `POST /v1/acks/{channel}` with
    X-Parcours-Timestamp: <unix seconds>
    X-Parcours-Signature: sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + raw body)>
The timestamp is signed with the body, so a captured request cannot be replayed after the
tolerance window; inside it, the ack id makes a replay harmless (see the API). A channel
has up to two active secrets so that partners can rotate without a gap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from typing import Any

SIGNATURE_SCHEME = "sha256="
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class AckRejected(Exception):
    """The request is not an authentic, fresh partner ack; the message says why (never which secret)."""


def sign_ack(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Parcours-Signature` header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return SIGNATURE_SCHEME + digest


def verify_ack(secrets: Iterable[str], *, timestamp: str | None, signature: str | None, body: bytes,
               now: float, tolerance_seconds: int) -> int:
    """The request's timestamp if some active secret signed it recently; raises AckRejected."""
    if not timestamp or not signature:
        raise AckRejected("Sign the request: X-Parcours-Timestamp and X-Parcours-Signature are required.")
    timestamp = timestamp.strip()
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise AckRejected("X-Parcours-Timestamp must be unix seconds.")
    sent_at = int(timestamp)
    if abs(now - sent_at) > tolerance_seconds:
        raise AckRejected(f"X-Parcours-Timestamp is more than {tolerance_seconds}s away from our clock.")
    presented = signature.strip().encode()
    if not any(hmac.compare_digest(sign_ack(secret, timestamp, body).encode(), presented) for secret in secrets):
        raise AckRejected("Bad signature.")
    return sent_at


def fingerprint(fields: dict[str, Any]) -> str:
    """A stable digest of an ack's meaning, to tell an identical redelivery from a conflicting one."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()

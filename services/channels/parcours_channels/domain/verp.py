"""VERP return paths: each message's envelope sender names its dispatch and recipient, so a
bounce sent back to it says exactly which message failed, whatever the bounce's format.

    bounce+<token>@<bounce domain>
    token = base32(dispatch id (16 bytes) | recipient digest (6) | HMAC-SHA256(secret, both)[:10])

52 lower-case characters: the local part stays under SMTP's 64-octet limit and survives
relays that change its case. The truncated MAC (80 bits) makes the address unguessable, so
a forged bounce cannot fail someone else's dispatch."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from uuid import UUID

from parcours_channels.domain.wording import recipient_key

LOCAL_PREFIX = "bounce+"
_DIGEST_BYTES = 6
_MAC_BYTES = 10
_TOKEN_BYTES = 16 + _DIGEST_BYTES + _MAC_BYTES


class InvalidVerp(ValueError):
    """Not one of our return paths, or not signed by us."""


@dataclass(frozen=True)
class VerpClaims:
    dispatch_id: UUID
    recipient_digest: bytes


def recipient_digest(email: str) -> bytes:
    """Six bytes that identify a mailbox among a dispatch's recipients (not secret)."""
    return hashlib.sha1(recipient_key(email).encode()).digest()[:_DIGEST_BYTES]


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), b"verp:" + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def verp_address(secret: str, *, domain: str, dispatch_id: UUID, recipient: str) -> str:
    """The envelope sender of the message `dispatch_id` sends to `recipient`."""
    payload = dispatch_id.bytes + recipient_digest(recipient)
    return f"{LOCAL_PREFIX}{_encode(payload + _mac(secret, payload))}@{domain.lower()}"


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def is_verp_shaped(address: str) -> bool:
    """The address claims to be a return path of ours (whether or not it is genuine)."""
    return address.partition("@")[0].lower().startswith(LOCAL_PREFIX)


def read_verp_address(secrets: list[str], address: str, *, domain: str) -> VerpClaims:
    """What a genuine return path names; raises InvalidVerp. Several secrets allow rotation."""
    local, _, address_domain = address.strip().strip("<>").rpartition("@")
    if address_domain.lower() != domain.lower() or not local.lower().startswith(LOCAL_PREFIX):
        raise InvalidVerp("not a return path of ours")
    token = local[len(LOCAL_PREFIX):].upper()
    try:
        raw = base64.b32decode(token + "=" * (-len(token) % 8))
    except (binascii.Error, ValueError) as exc:
        raise InvalidVerp("malformed token") from exc
    if len(raw) != _TOKEN_BYTES or _encode(raw) != token.lower():  # one spelling per token: no spare bits
        raise InvalidVerp("malformed token")
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if not any(hmac.compare_digest(_mac(secret, payload), mac) for secret in secrets):
        raise InvalidVerp("bad signature")
    return VerpClaims(dispatch_id=UUID(bytes=payload[:16]), recipient_digest=payload[16:])

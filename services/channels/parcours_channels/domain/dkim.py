"""DKIM keys of tenant sender domains: generating one, the DNS record that publishes it,
and signing a message's bytes with it (RFC 6376, rsa-sha256, relaxed/relaxed)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import date

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048  # RFC 8301: at least 1024, 2048 recommended; larger ones do not fit one TXT string
# What the signature covers: the headers a forger or a forwarder's rewrite would change.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type")


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_pem: bytes
    public_key: str  # base64 DER SubjectPublicKeyInfo, the record's p=

    @property
    def record_name(self) -> str:
        return dkim_record_name(self.selector, self.domain)

    @property
    def record_value(self) -> str:
        return dkim_record_value(self.public_key)


def dkim_record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def dkim_record_value(public_key: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key}"


def new_selector(today: date) -> str:
    """A fresh selector, dated so that the DNS zone tells old keys from new ones."""
    return f"prc{today:%Y%m}-{secrets.token_hex(3)}"


def generate_key(domain: str, selector: str) -> DkimKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return DkimKey(domain=domain, selector=selector, private_pem=pem, public_key=base64.b64encode(der).decode())


def signature_header(message: bytes, key: DkimKey) -> str:
    """The DKIM-Signature field value (folded, CRLF line ends) for `message` as it goes on the wire."""
    field = dkim.sign(message, key.selector.encode(), key.domain.encode(), key.private_pem,
                      canonicalize=(b"relaxed", b"relaxed"), include_headers=list(SIGNED_HEADERS))
    name, _, value = field.decode("ascii").partition(":")
    assert name == "DKIM-Signature"
    return value.strip()


def parse_record(text: str) -> dict[str, str]:
    """Tags of a DKIM (or DMARC) TXT record: `v=DKIM1; k=rsa; p=…` → {"v": "DKIM1", …}."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), "".join(value.split()))
    return tags

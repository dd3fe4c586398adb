"""DKIM keys of tenant sender domains: generating one, the DNS record that publishes it,
and signing a message's bytes with it (RFC 6376, rsa-sha256, relaxed/relaxed).

Parsing, canonicalization and header hashing are dkimpy's; the RSA private-key operation is
OpenSSL's (cryptography): dkimpy's pure-Python modular exponentiation costs ~7 ms a message on
this machine, OpenSSL's well under one. dkimpy verifies what we sign in the tests."""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

KEY_BITS = 2048  # RFC 8301: at least 1024, 2048 recommended; larger ones do not fit one TXT string
# What the signature covers: the headers a forger or a forwarder's rewrite would change.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type")
_B64_LINE = 72


@functools.cache
def _dkimpy():
    """dkimpy and its relaxed/relaxed policy, loaded with the first message signed: dkimpy imports dnspython,
    which a channels process whose tenants sign nothing need not carry."""
    import dkim
    from dkim.canonicalization import CanonicalizationPolicy

    return dkim, CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")


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

    @cached_property
    def _private_key(self) -> rsa.RSAPrivateKey:
        return serialization.load_pem_private_key(self.private_pem, password=None)


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


def signature_header(message: bytes, key: DkimKey, *, now: float | None = None) -> str:
    """The DKIM-Signature field value (folded, CRLF line ends) for `message` as it goes on the wire."""
    dkim, relaxed = _dkimpy()
    headers, body = dkim.rfc822_parse(message)
    body_hash = base64.b64encode(hashlib.sha256(relaxed.canonicalize_body(body)).digest())
    tags = [(b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", b"relaxed/relaxed"), (b"d", key.domain.encode()),
            (b"s", key.selector.encode()), (b"t", str(int(now if now is not None else time.time())).encode()),
            (b"h", b":".join(SIGNED_HEADERS)), (b"bh", body_hash)]
    unsigned = b"; ".join(b"=".join(tag) for tag in tags) + b"; b="
    digest = hashlib.sha256()
    dkim.hash_headers(digest, relaxed, relaxed.canonicalize_headers(headers), SIGNED_HEADERS,
                      (b"DKIM-Signature", b" " + unsigned), None)
    signature = base64.b64encode(key._private_key.sign(digest.digest(), padding.PKCS1v15(),
                                                       utils.Prehashed(hashes.SHA256())))
    # Folded where relaxed canonicalization ignores it: after each tag, and inside b=.
    lines = [unsigned.replace(b"; ", b";\r\n ").decode("ascii")]
    lines += [signature[i:i + _B64_LINE].decode("ascii") for i in range(0, len(signature), _B64_LINE)]
    return "\r\n ".join(lines)


def parse_record(text: str) -> dict[str, str]:
    """Tags of a DKIM (or DMARC) TXT record: `v=DKIM1; k=rsa; p=…` → {"v": "DKIM1", …}."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), "".join(value.split()))
    return tags

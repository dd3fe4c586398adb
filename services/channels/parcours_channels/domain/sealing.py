"""Secrets kept at rest (DKIM private keys) are sealed with a key derived from a service
secret; the secrets rotated out still open what they sealed until it is re-sealed."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SealBroken(Exception):
    """No key secret opens this value: it was sealed with a secret this process does not have."""


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"parcours-channels-seal:" + secret.encode()).digest()))


def seal(plaintext: bytes, secrets: list[str]) -> str:
    """Encrypt and authenticate `plaintext` with the first (current) secret."""
    return MultiFernet([_fernet(s) for s in secrets]).encrypt(plaintext).decode("ascii")


def unseal(token: str, secrets: list[str]) -> bytes:
    """The plaintext sealed with any of `secrets`; SealBroken if none opens it."""
    try:
        return MultiFernet([_fernet(s) for s in secrets]).decrypt(token.encode("ascii"))
    except InvalidToken as exc:
        raise SealBroken("sealed with an unknown secret, or altered") from exc

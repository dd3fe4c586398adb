"""OpenID Connect sign-in for the console: the authorization code flow with PKCE (RFC 7636) and a
nonce. The provider proves who the person is (a verified e-mail in a signed ID token); the console
user of that e-mail — created by an admin, with its tenant and role — is who signs in. No IO here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlencode

import jwt

ALGORITHMS = ["RS256", "ES256"]  # asymmetric only: a provider's key never doubles as an HMAC secret


class InvalidIdToken(Exception):
    """The ID token is not one this sign-in may trust."""


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(endpoint: str, *, client_id: str, redirect_uri: str, state: str, nonce: str,
                      challenge: str) -> str:
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                       "scope": "openid email profile", "state": state, "nonce": nonce,
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def key_id(id_token: str) -> str | None:
    try:
        return jwt.get_unverified_header(id_token).get("kid")
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"not a JWT: {exc}") from None


def verified_email(id_token: str, jwks: dict, *, issuer: str, client_id: str, nonce: str) -> str:
    """The e-mail the provider vouches for, once the token's signature, issuer, audience, expiry and
    nonce hold; InvalidIdToken otherwise."""
    kid = key_id(id_token)
    try:
        keys = [key for key in jwt.PyJWKSet.from_dict(jwks).keys if kid is None or key.key_id == kid]
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"the provider's keys cannot be read: {exc}") from None
    if len(keys) != 1:
        raise InvalidIdToken(f"no single key {kid!r} among the provider's keys")
    try:
        claims = jwt.decode(id_token, keys[0].key, algorithms=ALGORITHMS, audience=client_id, issuer=issuer,
                            options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(str(exc)) from None
    if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise InvalidIdToken("the nonce is not this sign-in's")
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is not True:
        raise InvalidIdToken("no verified e-mail address in the token")
    return email

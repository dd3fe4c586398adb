"""OAuth2 client credentials (RFC 6749 §4.4) for partner APIs: one token, reused until shortly
before it expires, renewed on demand (a 401 from the API)."""

from __future__ import annotations

import asyncio
import time

import httpx
from pydantic import BaseModel, Field, ValidationError

from parcours_channels.adapters import PartnerUnavailable


class _Token(BaseModel):
    access_token: str = Field(min_length=1)
    expires_in: int = Field(default=3600, ge=1)


class ClientCredentials:
    def __init__(self, http: httpx.AsyncClient, *, token_url: str, client_id: str, client_secret: str,
                 scope: str | None = None, timeout: float = 30) -> None:
        self._http = http
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
                      **({"scope": scope} if scope else {})}
        self._token_url = token_url
        self._timeout = timeout
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def bearer(self, *, renew: bool = False) -> str:
        """A valid access token; a new one when `renew` or the current one is about to expire."""
        async with self._lock:
            if renew or self._token is None or time.monotonic() > self._expires:
                try:
                    response = await self._http.post(self._token_url, data=self._form, timeout=self._timeout)
                except httpx.HTTPError as exc:
                    raise PartnerUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from None
                if response.status_code != 200:
                    raise PartnerUnavailable(f"the token endpoint refused the client credentials ({response.status_code})")
                try:
                    token = _Token.model_validate_json(response.content)
                except ValidationError:
                    raise PartnerUnavailable("the token endpoint's answer is malformed") from None
                self._token = token.access_token
                self._expires = time.monotonic() + max(token.expires_in - 60, 1)
            return self._token

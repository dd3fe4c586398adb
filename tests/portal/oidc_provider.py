"""A local OpenID Connect provider for the console's sign-in tests, following OpenID Connect Core
1.0 and RFC 7636: discovery, authorization endpoint (it signs in whoever `email` names, without a
page), token endpoint (client_secret_basic, PKCE S256, single-use codes) and its JWKS."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Header, HTTPException, Query
from fastapi.responses import RedirectResponse

from parcours_devstack.partners import PartnerServer


class OidcProvider:
    def __init__(self, *, client_id: str, client_secret: str, redirect_uri: str):
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.email: str | None = None  # who signs in at the authorization endpoint
        self.signing_key = self.key  # another key: tokens the published keys do not verify
        self.codes: dict[str, dict] = {}
        self.server = PartnerServer(self.app())

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> OidcProvider:
        await self.server.start()
        return self

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict:
            return {"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
                    "response_types_supported": ["code"], "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"]}

        @app.get("/authorize")
        async def authorize(response_type: str, client_id: str, redirect_uri: str, scope: str, state: str,
                            nonce: str, code_challenge: str, code_challenge_method: str = Query()):
            if (response_type, client_id, redirect_uri, code_challenge_method) != (
                    "code", self.client_id, self.redirect_uri, "S256") or "openid" not in scope.split():
                raise HTTPException(400, "invalid_request")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": nonce, "challenge": code_challenge, "email": self.email}
            return RedirectResponse(f"{redirect_uri}?code={code}&state={state}", status_code=303)

        @app.post("/token")
        async def token(grant_type: str = Form(), code: str = Form(), redirect_uri: str = Form(),
                        code_verifier: str = Form(), authorization: str = Header(default="")) -> dict:
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if authorization != f"Basic {expected}":
                raise HTTPException(401, "invalid_client")
            grant = self.codes.pop(code, None)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=")
            if (grant is None or grant_type != "authorization_code" or redirect_uri != self.redirect_uri
                    or challenge.decode() != grant["challenge"]):
                raise HTTPException(400, "invalid_grant")
            now = int(time.time())
            claims = {"iss": self.url, "sub": f"user-{grant['email']}", "aud": self.client_id, "iat": now,
                      "exp": now + 300, "nonce": grant["nonce"], "email": grant["email"], "email_verified": True}
            id_token = jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": self.kid})
            return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                    "id_token": id_token}

        @app.get("/jwks")
        async def jwks() -> dict:
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return {"keys": [public | {"kid": self.kid, "alg": "RS256", "use": "sig"}]}

        return app

"""Who may do what, password hashes, and the signed tokens of sessions and forms. No IO."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ADMIN, CREDIT_MANAGER, VIEWER = "admin", "credit_manager", "viewer"
ROLES = (ADMIN, CREDIT_MANAGER, VIEWER)
USER, RECIPIENT = "user", "recipient"
# What each role may change; every role reads its own tenant's data.
PERMISSIONS = {
    "resolve_incident": {ADMIN, CREDIT_MANAGER},
    "hold_dunning": {ADMIN, CREDIT_MANAGER},
    "edit_strategies": {ADMIN, CREDIT_MANAGER},
    "manage_users": {ADMIN},
}

_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) defaults
# Verified against when the e-mail is unknown, so that an unknown user costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user")


def allowed(role: str, action: str) -> bool:
    return role in PERMISSIONS.get(action, ())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Session:
    """A console user's (`subject` = user id) or a recipient's (`subject` = e-mail, scoped to one customer)."""

    kind: str
    tenant_id: str
    subject: str
    expires_at: int
    customer_ref: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: str, purpose: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{purpose}:{body}".encode(), hashlib.sha256).digest())


def sign_value(secret: str, purpose: str, value: dict) -> str:
    """A cookie value only this service could have written, for this purpose."""
    body = _b64(json.dumps(value, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, purpose, body)}"


def read_value(secret: str, purpose: str, token: str | None) -> dict | None:
    """What `sign_value` signed for `purpose`, or None if it is missing, forged or malformed."""
    if not token or len(token) > 4096:
        return None
    body, _, mac = token.partition(".")
    if not hmac.compare_digest(mac, _mac(secret, purpose, body)):
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def sign_session(secret: str, session: Session) -> str:
    return sign_value(secret, "session", asdict(session))


def read_session(secret: str, token: str | None, *, now: float) -> Session | None:
    """The session a cookie holds, or None if it is missing, forged, malformed or expired."""
    value = read_value(secret, "session", token)
    try:
        session = Session(**value) if value is not None else None
    except TypeError:
        return None
    return session if session is not None and session.expires_at > now else None


def form_token(secret: str, cookie: str) -> str:
    """The anti-forgery token of every form of a session (double submit, bound to the session cookie)."""
    return _mac(secret, "form", cookie)


def form_token_ok(secret: str, cookie: str | None, token: str | None) -> bool:
    return bool(cookie and token) and hmac.compare_digest(token, form_token(secret, cookie))


MIN_PASSWORD = 12


def user_errors(*, email: str, name: str, role: str, password: str) -> dict[str, str]:
    """Field → message key for each problem of a user form."""
    errors = {}
    local, _, domain = email.strip().partition("@")
    if not local or "." not in domain:
        errors["email"] = "field.email"
    if not name.strip():
        errors["name"] = "field.required"
    if role not in ROLES:
        errors["role"] = "field.required"
    if len(password) < MIN_PASSWORD:
        errors["password"] = "field.password"
    return errors

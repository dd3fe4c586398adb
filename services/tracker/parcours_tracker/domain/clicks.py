"""Who opened a tracked link: a person or a machine. No IO.

Mail security scanners (Safe Links, Proofpoint, Mimecast…) fetch every link of a message as it
arrives, before any person reads it. So a GET of the link is never proof of a view: it is
journaled as `opened` or, when it looks like a scanner, `opened_by_machine`. The proof is a
person pressing the button of the interstitial page: a POST carrying a nonce that only a
fetch of that page gives, signed, short-lived and single use."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets as random
from collections.abc import Sequence

OPENED = "opened"
OPENED_BY_MACHINE = "opened_by_machine"
NONCE_MAX_AGE_SECONDS = 24 * 3600

# User agents of link scanners and scripted clients (case-insensitive substrings).
SCANNER_AGENTS = re.compile("|".join((
    r"bot\b", r"spider", r"crawler", r"preview", r"scanner", r"safelinks", r"safe ?links", r"proofpoint",
    r"mimecast", r"barracuda", r"symantec", r"messagelabs", r"forcepoint", r"fortinet", r"trend ?micro",
    r"sophos", r"cisco", r"ironport", r"microsoft office", r"ms-office", r"outlook-ios-android", r"google-safety",
    r"googleimageproxy", r"yahoomailproxy", r"urlscan", r"virustotal", r"curl/", r"wget/", r"python-requests",
    r"python-httpx", r"aiohttp", r"go-http-client", r"java/", r"okhttp", r"libwww", r"headlesschrome", r"phantomjs",
)), re.IGNORECASE)


def classify_open(*, user_agent: str | None, seconds_after_dispatch: float | None,
                  prefetch_seconds: float) -> tuple[str, list[str]]:
    """(`opened` or `opened_by_machine`, the reasons why it looks like a machine)."""
    reasons = []
    if not user_agent:
        reasons.append("no user agent")
    elif scanner := _scanner_in(user_agent):
        reasons.append(f"scanner user agent ({scanner})")
    if seconds_after_dispatch is not None and 0 <= seconds_after_dispatch < prefetch_seconds:
        reasons.append(f"opened {seconds_after_dispatch:.1f}s after the dispatch (prefetch)")
    return (OPENED_BY_MACHINE if reasons else OPENED), reasons


@functools.lru_cache(maxsize=4096)
def _scanner_in(user_agent: str) -> str | None:
    """The scanner named in a user agent, if any (a few agents make most opens: each is searched once)."""
    match = SCANNER_AGENTS.search(user_agent)
    return match.group(0).strip() if match else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: str, token: str, issued: int, salt: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{issued}.{salt}.{token}".encode(), hashlib.sha256).digest()[:18])


def issue_nonce(secret: str, *, token: str, now: float) -> str:
    """A nonce for one rendering of `token`'s interstitial page."""
    issued, salt = int(now), random.token_urlsafe(9)
    return f"{issued}.{salt}.{_mac(secret, token, issued, salt)}"


def verify_nonce(secrets: Sequence[str], *, token: str, nonce: str, now: float,
                 max_age_seconds: int = NONCE_MAX_AGE_SECONDS) -> bool:
    """Whether `nonce` was issued for `token` by us (any active secret), recently."""
    parts = nonce.split(".")
    if len(parts) != 3 or not parts[0].isascii() or not parts[0].isdigit() or len(nonce) > 128:
        return False
    issued, salt, mac = int(parts[0]), parts[1], parts[2]
    if not 0 <= now - issued <= max_age_seconds:
        return False
    return any(hmac.compare_digest(_mac(secret, token, issued, salt).encode(), mac.encode()) for secret in secrets)

"""Fingerprint of a request, to tell a retry (same body) from a reused key (other body)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def request_fingerprint(document: Any) -> str:
    """SHA-256 of the canonical JSON of `document`: key order and whitespace do not matter."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()

"""Tenant identifiers: lowercase slugs that travel in every event and URL."""

from __future__ import annotations

import re
import unicodedata

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_STEM_MAX = 48


def tenant_id_from_name(name: str, *, suffix: str) -> str:
    """A slug of `name` plus a random `suffix`, e.g. ("Café Dupont SA", "3f9a1c") → "cafe-dupont-sa-3f9a1c"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    stem = _NOT_SLUG.sub("-", ascii_name).strip("-")[:_STEM_MAX].strip("-") or "tenant"
    return f"{stem}-{suffix}"

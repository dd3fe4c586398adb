"""The CSV export of the invoice list: its columns, and cells a spreadsheet cannot execute."""

from __future__ import annotations

from datetime import datetime
from typing import Any

COLUMNS = ("invoice_id", "number", "customer_ref", "status", "code", "status_at", "first_dispatched_at", "acked_at",
           "viewed_at")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A cell as text; one a spreadsheet would read as a formula gets a leading apostrophe (CSV injection)."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text

"""What a recipient may answer from the portal, and what each answer must carry. No IO."""

from __future__ import annotations

from datetime import date

# The portal's words for the tracker's recipient actions.
ANSWERS = {"acknowledge": "taken_over", "approve": "approved", "dispute": "disputed", "promise": "promise_to_pay"}
FILE_TYPES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def sniff_type(data: bytes) -> str | None:
    """The file's type from its first bytes (what the browser claims is not trusted)."""
    return next((kind for magic, kind in FILE_TYPES.items() if data.startswith(magic)), None)


def answer_errors(*, action: str, reason: str, promised_on: str, attachment: bytes, max_bytes: int,
                  today: date) -> tuple[dict[str, str], date | None]:
    """Field → message key for each problem, and the promised date when there is one."""
    errors: dict[str, str] = {}
    promised = None
    if action not in ANSWERS:
        errors["action"] = "field.required"
    if action == "dispute" and not reason.strip():
        errors["reason"] = "field.required"
    if action == "promise":
        try:
            promised = date.fromisoformat(promised_on)
        except ValueError:
            errors["promised_on"] = "field.required"
        else:
            if promised < today:
                errors["promised_on"] = "field.date_past"
    if attachment:
        if action != "dispute" or len(attachment) > max_bytes:
            errors["attachment"] = "field.too_large" if len(attachment) > max_bytes else "field.bad_type"
        elif sniff_type(attachment) is None:
            errors["attachment"] = "field.bad_type"
    return errors, promised

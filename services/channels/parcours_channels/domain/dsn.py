"""Reading bounces: RFC 3464 delivery status notifications, and the older free-form bounces
some servers still send (recognised by flufl.bounce's heuristics).

A report says, per recipient, whether delivery failed for good (Action: failed, or a 5.x.x
status) or is only delayed (Action: delayed, or 4.x.x); and, from the returned headers, the
Message-ID of the message it is about."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message

from flufl.bounce import all_failures

from parcours_channels.domain.wording import one_line

_DIAGNOSTIC_MAX = 2000  # DeliveryBounced.diagnostic's limit
_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_NOT_FAILURES = {"delivered", "relayed", "expanded"}


@dataclass(frozen=True)
class RecipientFailure:
    recipient: str | None  # the address the report names (Final-Recipient), if any
    permanent: bool
    status: str | None  # enhanced status code, e.g. 5.1.1
    diagnostic: str


@dataclass(frozen=True)
class BounceReport:
    failures: tuple[RecipientFailure, ...]
    original_message_id: str | None
    standard: bool  # an RFC 3464 report (not a heuristic reading)

    def worst(self) -> RecipientFailure | None:
        """The failure that decides for a message: a permanent one if any."""
        return next((f for f in self.failures if f.permanent), self.failures[0] if self.failures else None)


def parse_bounce(raw: bytes) -> BounceReport:
    """What a bounce message reports; no failures when it is not a bounce (an auto-reply…)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    status_part = next((p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None)
    original_id = _original_message_id(message)
    if status_part is not None:
        return BounceReport(tuple(_dsn_failures(status_part)), original_id, standard=True)
    return BounceReport(tuple(_heuristic_failures(raw)), original_id, standard=False)


def _dsn_failures(part: Message) -> list[RecipientFailure]:
    blocks = part.get_payload()
    if not isinstance(blocks, list):  # the parser could not split the fields into blocks
        return []
    failures = []
    for block in blocks[1:]:  # the first block is about the message, the others one recipient each
        action = (block.get("Action") or "").strip().lower()
        status = (block.get("Status") or "").strip().split(" ")[0] or None
        status = status if status and _STATUS.match(status) else None
        if action in _NOT_FAILURES or (not action and (status is None or status.startswith("2"))):
            continue
        permanent = action == "failed" if action else status.startswith("5")  # type: ignore[union-attr]
        failures.append(RecipientFailure(
            recipient=_typed_address(block.get("Final-Recipient") or block.get("Original-Recipient")),
            permanent=permanent, status=status,
            diagnostic=_clip(one_line(_typed_value(block.get("Diagnostic-Code")) or action or "")),
        ))
    return failures


def _heuristic_failures(raw: bytes) -> list[RecipientFailure]:
    temporary, permanent = all_failures(email.message_from_bytes(raw))
    return [RecipientFailure(recipient=address.decode(errors="replace"), permanent=is_permanent, status=None,
                             diagnostic="non-standard bounce")
            for is_permanent, addresses in ((True, permanent), (False, temporary)) for address in sorted(addresses)]


def _original_message_id(message: EmailMessage) -> str | None:
    """The Message-ID of the returned message (its headers or the whole of it come back)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            returned = part.get_payload()
            headers = returned[0] if isinstance(returned, list) and returned else None
        elif kind == "text/rfc822-headers":
            headers = email.message_from_bytes(part.get_payload(decode=True) or b"", policy=email.policy.default)
        else:
            continue
        if headers is not None and headers.get("Message-ID"):
            return str(headers["Message-ID"]).strip()
    return None


def _typed_value(field: str | None) -> str | None:
    """`rfc822; jeanne@example.com` → `jeanne@example.com` (the type before the semicolon dropped)."""
    if field is None:
        return None
    kind, sep, value = str(field).partition(";")
    return value.strip() if sep else kind.strip()


def _typed_address(field: str | None) -> str | None:
    value = _typed_value(field)
    return value.strip("<>") if value and "@" in value else None


def _clip(text: str) -> str:
    return text if len(text) <= _DIAGNOSTIC_MAX else text[: _DIAGNOSTIC_MAX - 1] + "…"

"""The SMTP sink's mailbox: messages as received, their headers as a reader sees them, and
their copies on disk (`<id>.eml` + `<id>.json` envelope) that a restarted sink reloads."""

from __future__ import annotations

import email
import email.errors
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_HEADERS = {"message_id": "Message-ID", "subject": "Subject", "from": "From", "to": "To", "date": "Date"}

@dataclass(frozen=True)
class StoredMessage:
    id: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: str
    raw: bytes

    @cached_property
    def headers(self) -> dict[str, str | None]:
        """The headers a reader looks for, parsed when first asked for (not on the SMTP path)."""
        return parse_headers(self.raw)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            **self.headers,
            "received_at": self.received_at,
            "size": len(self.raw),
        }

    def detail(self) -> dict[str, Any]:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        text_part = parsed.get_body(preferencelist=("plain",))
        html_part = parsed.get_body(preferencelist=("html",))
        attachments = [
            {
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "size": len(part.get_payload(decode=True) or b""),
            }
            for part in parsed.walk()
            if not part.is_multipart() and part is not text_part and part is not html_part
        ]
        return {
            **self.summary(),
            "text": _decoded_text(text_part),
            "html": _decoded_text(html_part),
            "attachments": attachments,
        }


def _decoded_text(part: email.message.Message | None) -> str | None:
    if part is None:
        return None
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):  # unknown or lying charset: show what we can
        text = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n")


def parse_headers(raw: bytes) -> dict[str, str | None]:
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    as_sent = None
    headers: dict[str, str | None] = {}
    for key, name in _HEADERS.items():
        try:
            value = parsed.get(name)
            malformed = value is not None and bool(value.defects)
        except Exception:  # the stdlib parser can crash on malformed headers; the message must not be lost
            malformed = True
        if malformed:  # show the header as sent rather than the parser's repair of it
            as_sent = as_sent or email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
            value = _unparsed(str(as_sent.get(name)))
        headers[key] = None if value is None else str(value)
    return headers


def _unparsed(value: str) -> str:
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, UnicodeError, email.errors.HeaderParseError):
        return value


def write_message(store_dir: Path, message: StoredMessage) -> None:
    envelope = {"mail_from": message.mail_from, "rcpt_tos": list(message.rcpt_tos), "received_at": message.received_at}
    for suffix, data in ((".eml", message.raw), (".json", json.dumps(envelope).encode())):
        tmp = store_dir / f".{message.id}{suffix}.tmp"
        tmp.write_bytes(data)
        tmp.replace(store_dir / f"{message.id}{suffix}")


def stored_files(store_dir: Path) -> Iterator[tuple[int, Path]]:
    for path in store_dir.glob("*.eml"):
        if path.stem.isdigit():
            yield int(path.stem), path


def load_messages(store_dir: Path) -> list[StoredMessage]:
    messages = []
    for msg_id, path in sorted(stored_files(store_dir)):
        raw = path.read_bytes()
        headers = parse_headers(raw)
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            envelope = json.loads(sidecar.read_text())
        else:  # an .eml dropped in by hand: make up the envelope from the headers
            addresses = email.utils.getaddresses([headers["to"] or ""])
            envelope = {
                "mail_from": email.utils.parseaddr(headers["from"] or "")[1],
                "rcpt_tos": [address for _, address in addresses if address],
                "received_at": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(),
            }
        messages.append(
            StoredMessage(
                id=msg_id,
                mail_from=envelope["mail_from"],
                rcpt_tos=tuple(envelope["rcpt_tos"]),
                received_at=envelope["received_at"],
                raw=raw,
            )
        )
    return messages

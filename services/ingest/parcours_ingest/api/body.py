"""Reading a JSON request body ourselves: bounded in size, and numbers parsed as Decimal so
that no amount ever passes through a float."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from typing import Any

from fastapi import Request

from parcours_runtime.problems import Problem


def media_type_of(content_type: str) -> str:
    """"application/json" from "Application/JSON; charset=utf-8"."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


async def read_json_body(request: Request, *, max_bytes: int) -> Any:
    """The parsed JSON body; problem 415 (not JSON), 413 (too large) or 400 (malformed)."""
    if not is_json_media_type(media_type_of(request.headers.get("content-type", ""))):
        raise Problem(415, "Send the invoice as `Content-Type: application/json`.")
    return parse_json(await read_body(request, max_bytes=max_bytes))


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The raw body, at most `max_bytes` (problem 413), however it is sent."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise Problem(413, f"The body exceeds the limit of {max_bytes} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():  # also bounds bodies sent without (or with a false) Content-Length
        size += len(chunk)
        if size > max_bytes:
            raise Problem(413, f"The body exceeds the limit of {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """JSON with every number a Decimal; problem 400 if malformed, 422 if a string holds a NUL character."""
    try:
        # Every number becomes a Decimal (a 5000-digit integer, NaN or Infinity too), so that
        # validation rejects a bad one at its field rather than the parser choking on it.
        parsed = json.loads(raw, parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise Problem(400, f"The body is not valid JSON: {exc}", slug="malformed-json") from None
    except RecursionError:
        raise Problem(400, "The body is nested too deeply.", slug="malformed-json") from None
    # The only way JSON writes a NUL (or a backslash followed by "u0000", hence the second look): PostgreSQL
    # stores none, in text or jsonb, and one such invoice would fail the others of its group commit.
    if b"\\u0000" in raw and (pointers := _nul_pointers(parsed, "")):
        raise Problem(422, "Text may not contain the NUL character (\\u0000).", slug="unstorable-text",
                      errors=[{"pointer": pointer, "detail": "contains the NUL character", "code": "nul-character"}
                              for pointer in pointers])
    return parsed


def _nul_pointers(value: Any, pointer: str) -> list[str]:
    """JSON pointers (RFC 6901) of the strings, values or keys, holding a NUL character."""
    if isinstance(value, str):
        return [pointer] if "\x00" in value else []
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            at = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
            found += ([at] if "\x00" in key else []) + _nul_pointers(item, at)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nul_pointers(item, f"{pointer}/{index}")
    return found


@dataclass(frozen=True)
class FormPart:
    name: str | None
    filename: str | None
    media_type: str
    content: bytes


def form_parts(raw: bytes, content_type: str) -> list[FormPart]:
    """The parts of a multipart/form-data body, in order (the stdlib MIME parser: the body is already bounded)."""
    message = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") +
                                                        b"\r\n\r\n" + raw)
    if not message.is_multipart():
        raise Problem(400, "The multipart body cannot be read (boundary missing or wrong).", slug="malformed-multipart")
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        parts.append(FormPart(name=name if isinstance(name, str) else None,
                              filename=filename if isinstance(filename, str) else None,
                              media_type=part.get_content_type(), content=part.get_payload(decode=True) or b""))
    return parts

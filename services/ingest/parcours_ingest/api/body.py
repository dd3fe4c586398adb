"""Reading a JSON request body ourselves: bounded in size, and numbers parsed as Decimal so
that no amount ever passes through a float."""

from __future__ import annotations

import json
from decimal import Decimal
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
    """JSON with every number a Decimal; problem 400 if malformed."""
    try:
        # Every number becomes a Decimal (a 5000-digit integer, NaN or Infinity too), so that
        # validation rejects a bad one at its field rather than the parser choking on it.
        return json.loads(raw, parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise Problem(400, f"The body is not valid JSON: {exc}", slug="malformed-json") from None
    except RecursionError:
        raise Problem(400, "The body is nested too deeply.", slug="malformed-json") from None

"""The largest request body a service reads: 413 problem+json beyond it, whether the client announced
the size (Content-Length: refused before reading) or streams it (refused once the count passes the
limit, inside the route, so the problem handlers answer). Plain ASGI, like the tracing middleware."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parcours_runtime.problems import Problem, problem_response

_TOO_LARGE = "The request body is larger than this service accepts ({limit} bytes)."


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = _TOO_LARGE.format(limit=self.max_bytes)
        announced = dict(scope["headers"]).get(b"content-length")
        if announced is not None and (not announced.isdigit() or int(announced) > self.max_bytes):
            await problem_response(Request(scope), Problem(413, detail))(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # an HTTPException: FastAPI's body parsing lets it through
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)


def limit_bodies(app, max_bytes: int | None) -> None:
    """Install the limit on a FastAPI app (None: the service reads its bodies under limits of its own)."""
    if max_bytes is not None:
        app.add_middleware(BodyLimit, max_bytes=max_bytes)

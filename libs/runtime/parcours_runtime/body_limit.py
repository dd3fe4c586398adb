"""What a service accepts of a request body: at most `max_bytes` (413 problem+json beyond it, whether the
client announced the size — refused before reading — or streams it — refused once the count passes the
limit, inside the route, so the problem handlers answer), and no pause longer than `timeout` seconds
between two of its chunks (408: a slow upload does not hold a connection and a worker forever). Plain
ASGI, like the tracing middleware."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parcours_runtime.problems import Problem, problem_response

_TOO_LARGE = "The request body is larger than this service accepts ({limit} bytes)."
_TOO_SLOW = "The request body arrived too slowly (nothing for {timeout:g} s)."


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int | None, timeout: float):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        announced = dict(scope["headers"]).get(b"content-length")
        if limit is not None and announced is not None and (not announced.isdigit() or int(announced) > limit):
            await problem_response(Request(scope), Problem(413, _TOO_LARGE.format(limit=limit)))(scope, receive, send)
            return
        received, complete = 0, False

        async def counted() -> Message:
            nonlocal received, complete
            if complete:  # later reads wait for the client to leave (streamed answers): no clock on those
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:  # HTTPExceptions: FastAPI's body parsing lets them through
                raise HTTPException(408, _TOO_SLOW.format(timeout=self.timeout)) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if limit is not None and received > limit:
                    raise HTTPException(413, _TOO_LARGE.format(limit=limit))
            return message

        await self.app(scope, counted, send)


def limit_bodies(app, max_bytes: int | None, timeout: float) -> None:
    """Install the limits on a FastAPI app (`max_bytes` None: the service reads its bodies under limits of
    its own; the pause between chunks is bounded all the same)."""
    app.add_middleware(BodyLimit, max_bytes=max_bytes, timeout=timeout)

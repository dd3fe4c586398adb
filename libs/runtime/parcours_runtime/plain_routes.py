"""Plain routes: a Starlette endpoint (Request → Response) at the head of a FastAPI app's router, for the few
endpoints whose cost per request is what the product sells (a tracked-link click). FastAPI 0.165's route
machinery (matching through the routes declared before, dependency solving, parameter validation) costs about
55 µs a request, more than such a route's own work; a plain route reads its path parameters and headers
itself, and raises `Problem` like any other route (the app's exception handlers answer).

The OpenAPI document still describes it: `operations` ({"get": {...}}) are merged into the app's, before the
host documents problems and rate limits on them."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class PlainRoute:
    path: str
    endpoint: Callable[[Request], Awaitable[Response]]
    methods: Sequence[str]  # GET brings HEAD with it (Starlette); the endpoint tells them apart by request.method
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)  # OpenAPI operations by lower-case method

    def include(self, app: FastAPI) -> None:
        app.router.routes.insert(0, Route(self.path, self.endpoint, methods=list(self.methods)))
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            spec = generate()
            documented = spec.setdefault("paths", {}).setdefault(self.path, {})
            for method, operation in self.operations.items():
                # a copy: the host's own wrappers edit the document in place (problem+json, 429s)
                documented.setdefault(method, copy.deepcopy(operation))
            return spec

        app.openapi = openapi


def path_parameter(name: str, description: str) -> dict[str, Any]:
    """An OpenAPI path parameter of type string, as FastAPI would document it."""
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "title": name.title()}}

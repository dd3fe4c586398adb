"""Plain routes: the few endpoints whose cost per request is what the product sells (a tracked-link click, an
invoice received) served by a Starlette route at the head of a FastAPI app's router. FastAPI 0.165's route
machinery (matching through the routes declared before, dependency solving, parameter validation, the
endpoint's exit stack) costs 35–55 µs a request, more than such a route's own work.

Such an endpoint is declared as usual (`@router.post(...)`, with its summary, responses and `openapi_extra`),
so the OpenAPI document and everything that lists the app's routes keep seeing it; it takes the `Request`
alone, reads its path parameters, headers and body itself, returns a `Response` and raises `Problem` like any
other route (the app's exception handlers answer). `serve_plainly(app, endpoint)` then puts the same endpoint
in front, where it answers every request of its path and methods."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]


class _PlainRoute(Route):
    async def handle(self, scope, receive, send) -> None:
        scope["route"] = self  # FastAPI's router names only its own routes: metrics count requests by this template
        await super().handle(scope, receive, send)


def serve_plainly(app: FastAPI, *endpoints: Endpoint) -> None:
    """Serve each of these declared endpoints by a plain route ahead of the app's router (after the app's
    routers are included)."""
    for endpoint in endpoints:
        # as included: the path with its router's prefix, the dependencies with its router's
        declared = [route for route in iter_route_contexts(app.routes)
                    if isinstance(route.original_route, APIRoute) and route.original_route.endpoint is endpoint]
        if not declared:
            raise LookupError(f"{endpoint.__qualname__} is not a route of {app.title}")
        for route in declared:
            dependant = route.dependant
            if (dependant.request_param_name is None or dependant.dependencies or dependant.path_params
                    or dependant.query_params or dependant.header_params or dependant.cookie_params
                    or dependant.body_params):
                raise TypeError(f"{endpoint.__qualname__} must take the Request alone to be served plainly")
            # GET brings HEAD with it (Starlette): the endpoint tells them apart by request.method
            app.router.routes.insert(0, _PlainRoute(route.path, endpoint, methods=sorted(route.methods), name=route.name))


def path_parameter(name: str, description: str) -> dict[str, Any]:
    """An OpenAPI path parameter of type string, as FastAPI would document it (for `openapi_extra`: a plain
    endpoint reads it from `request.path_params`)."""
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "title": name.title()}}

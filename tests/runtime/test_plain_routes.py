"""`serve_plainly`: a declared endpoint answers from a plain route ahead of FastAPI's, its OpenAPI operation
unchanged; an endpoint FastAPI would have to feed parameters cannot be served so."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.responses import JSONResponse, Response

from parcours_runtime.plain_routes import path_parameter, serve_plainly
from parcours_runtime.problems import Problem, install_problem_handlers


def _app() -> tuple[FastAPI, object]:
    app = FastAPI(title="plain")
    install_problem_handlers(app)
    router = APIRouter(prefix="/v1/things", tags=["things"])

    @router.get("/{name}", summary="Read a thing", status_code=200,
                openapi_extra={"parameters": [path_parameter("name", "The thing's name")]})
    async def read_thing(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "missing":
            raise Problem(404, "No such thing.")
        route = request.scope["route"]  # the template metrics count by
        return JSONResponse({"name": name, "route": route.path, "declared": isinstance(route, APIRoute),
                             "head": request.method == "HEAD"})

    @router.get("/{name}/typed")
    async def typed_thing(name: str) -> dict:
        return {"name": name}

    app.include_router(router)
    return app, (read_thing, typed_thing)


async def test_a_declared_endpoint_is_served_plainly_and_still_documented():
    app, (read_thing, _) = _app()
    documented = app.openapi()["paths"]["/v1/things/{name}"]["get"]
    app.openapi_schema = None
    serve_plainly(app, read_thing)
    assert app.openapi()["paths"]["/v1/things/{name}"]["get"] == documented
    assert documented["parameters"][0]["name"] == "name"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://plain") as client:
        answered = await client.get("/v1/things/lamp")
        probed = await client.head("/v1/things/lamp")
        refused = await client.get("/v1/things/missing")
        other = await client.get("/v1/things/lamp/typed")
    assert answered.json() == {"name": "lamp", "route": "/v1/things/{name}", "declared": False, "head": False}
    assert probed.status_code == 200
    assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
    assert other.json() == {"name": "lamp"}  # the app's other routes answer as before


def test_only_an_endpoint_taking_the_request_alone_is_served_plainly():
    app, (_, typed_thing) = _app()
    with pytest.raises(TypeError, match="typed_thing must take the Request alone"):
        serve_plainly(app, typed_thing)

    async def stray(request: Request) -> Response:
        return Response()

    with pytest.raises(LookupError, match="stray is not a route of plain"):
        serve_plainly(app, stray)

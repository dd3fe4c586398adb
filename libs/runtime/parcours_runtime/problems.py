"""RFC 9457 problem details for every error a Parcours API returns."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://parcours.dev/problems/"

_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
           415: "Unsupported media type", 422: "Unprocessable content", 429: "Too many requests",
           500: "Internal server error", 503: "Service unavailable"}
_SLUGS = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
          405: "method-not-allowed", 409: "conflict", 413: "payload-too-large",
          415: "unsupported-media-type", 422: "validation-error", 429: "rate-limited",
          500: "internal-error", 503: "unavailable"}


class Problem(Exception):
    """Raise from a route to answer with problem+json."""

    def __init__(self, status: int, detail: str, *, slug: str | None = None, title: str | None = None,
                 errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
                 extensions: dict[str, Any] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _SLUGS.get(status, "error")
        self.title = title or _TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers
        self.extensions = extensions  # RFC 9457 extension members, e.g. a link to a conflicting resource


def field_error(path: list[str | int] | tuple, detail: str, code: str = "invalid") -> dict[str, Any]:
    """One field-level error: a JSON Pointer into the request body plus a message."""
    pointer = "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) if path else ""
    return {"pointer": pointer, "detail": detail, "code": code}


def problem_response(request: Request | None, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    if problem.errors:
        body["errors"] = problem.errors
    for member, value in (problem.extensions or {}).items():
        body.setdefault(member, value)
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


def validation_problem(exc: RequestValidationError) -> Problem:
    errors = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            where, loc = loc[0], loc[1:]
        else:
            where = "body"
        item = field_error(loc, err.get("msg", "invalid"), err.get("type", "invalid"))
        if where != "body":
            item["in"] = where
        errors.append(item)
    return Problem(422, "The request does not match the expected schema.", errors=errors)


# PostgreSQL refuses U+0000 in text and jsonb: untranslatable_character, character_not_in_repertoire
_UNSTORABLE_TEXT = {"22P05", "22021"}
# connection_exception (08…), cannot_connect_now (57P03: starting up), admin/crash shutdown (57P01, 57P02)
_NO_CONNECTION = ("08", "57P01", "57P02", "57P03")


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(getattr(exc.orig, "__cause__", None), "sqlstate", None)


PROBLEM_SCHEMA = {
    "type": "object", "title": "Problem", "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "description": "Field-level errors: a JSON Pointer into the request (`in`: "
                                                   "where, when not the body), a message and a code.",
                   "items": {"type": "object", "required": ["pointer", "detail"],
                             "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"},
                                            "code": {"type": "string"}, "in": {"type": "string"}}}},
    },
}


def _document_problems(app: FastAPI) -> None:
    """The OpenAPI document says what the handlers answer: every error response is problem+json (FastAPI
    would document its own 422 shape, as application/json)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        if spec.get("components", {}).get("schemas", {}).get("Problem") is PROBLEM_SCHEMA:
            return spec  # done on an earlier call (FastAPI caches the document)
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operation in (op for ops in spec.get("paths", {}).values() for op in ops.values() if isinstance(op, dict)):
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] in ("4", "5") and set(response.get("content") or {PROBLEM_JSON: {}}) <= {
                        "application/json", PROBLEM_JSON}:
                    response["content"] = problem
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        return spec

    app.openapi = openapi


def install_problem_handlers(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return problem_response(request, validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        return problem_response(request, Problem(exc.status_code, detail, headers=getattr(exc, "headers", None)))

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError):
        return await _database_failure(request, exc, _sqlstate(exc), lost=exc.connection_invalidated, cause=exc.orig)

    @app.exception_handler(asyncpg.PostgresError)  # from a driver connection (parcours_runtime.db.driver_connection)
    async def _driver_database(request: Request, exc: asyncpg.PostgresError):
        return await _database_failure(request, exc, exc.sqlstate, lost=False, cause=exc)

    async def _database_failure(request: Request, exc: Exception, sqlstate: str | None, *, lost: bool,
                                cause) -> JSONResponse:
        if sqlstate in _UNSTORABLE_TEXT:  # the transaction rolled back: nothing was stored
            return problem_response(request, Problem(
                422, "Text may not contain the NUL character (\\u0000).", slug="unstorable-text"))
        if not lost and not str(sqlstate or "").startswith(_NO_CONNECTION):
            return await _unexpected(request, exc)
        return _unavailable(request, cause)

    @app.exception_handler(ConnectionError)
    async def _unreachable(request: Request, exc: ConnectionError):  # e.g. the database refusing connections
        return _unavailable(request, exc)

    def _unavailable(request: Request, cause) -> JSONResponse:
        log.warning("database connection lost on %s %s: %s", request.method, request.url.path, cause)
        return problem_response(request, Problem(503, "The database connection was lost; retry the request.",
                                                 headers={"Retry-After": "1"}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, Problem(500, "An unexpected error occurred; it has been logged."))

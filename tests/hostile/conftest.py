"""The hostile-input harness: a list of cases per service, each a request that must be refused with a
4xx problem+json (the exact status and problem type when the case says so), with no server error,
nothing stored (every table of the service's database counted before and after), nothing published
(the outbox relay's count), and the service still healthy afterwards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

PROBLEM_JSON = "application/problem+json"


@dataclass
class Case:
    """`request(ctx)` gives httpx arguments (content / json / headers / params); `ctx` is what the service's
    test set up (ids of existing objects, builders). `status`/`slug`: what the answer must be, when it matters."""

    name: str
    method: str
    path: str
    request: Callable[[Any], dict[str, Any]]
    status: int | None = None
    slug: str | None = None
    pointer: str | None = None  # a field-level error must point here (JSON Pointer prefix)


def raw(content: bytes | str, content_type: str | None = "application/json", **extra) -> Callable[[Any], dict]:
    data = content.encode() if isinstance(content, str) else content
    return lambda ctx: {"content": data, "headers": {"Content-Type": content_type} if content_type else {}, **extra}


SLOW_PAUSE = 1.5  # seconds between two chunks of a slow upload; the services under test wait 0.5 s at most
BODY_TIMEOUT = {"http_body_timeout_seconds": 0.5}


def slow(content: bytes, content_type: str = "application/json") -> Callable[[Any], dict]:
    """A body that stalls half-way (a slow-loris upload)."""

    async def chunks():
        yield content[: len(content) // 2]
        await asyncio.sleep(SLOW_PAUSE)
        yield content[len(content) // 2:]

    return lambda ctx: {"content": chunks(), "headers": {"Content-Type": content_type}}


def deep_json(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def json_body_cases(prefix: str, method: str, path: str, valid: Callable[[Any], Any], *,
                    text_field: str | None, oversize: int = 2 * 1024 * 1024) -> list[Case]:
    """What any JSON route must refuse. `valid(ctx)` is an acceptable body; `text_field` one of its string fields
    (None: the body is a list, and the cases about an object's field do not apply)."""

    def changed(change: Callable[[dict], Any]) -> Callable[[Any], dict]:
        def build(ctx):
            body = valid(ctx)
            changed_body = change(body)
            # encoded here: NaN and lone surrogates are what the case is about (httpx would refuse them)
            return {"content": json.dumps(body if changed_body is None else changed_body).encode(),
                    "headers": {"Content-Type": "application/json"}}
        return build

    def with_text(value: str) -> Callable[[Any], dict]:
        return changed(lambda body: body.__setitem__(text_field, value))

    def encoded(transform: Callable[[bytes], bytes], content_type: str | None = "application/json"):
        def build(ctx):
            headers = {"Content-Type": content_type} if content_type else {}
            return {"content": transform(json.dumps(valid(ctx)).encode()), "headers": headers}
        return build

    def case(name: str, build, status: int | None = None, slug: str | None = None, pointer: str | None = None):
        return Case(f"{prefix}-{name}", method, path, build, status, slug, pointer)

    cases = [
        case("broken-json", raw(b'{"a": ')),
        case("empty-body", raw(b"")),
        case("broken-utf8", encoded(lambda b: b.replace(b'"', b'"\xff\xfe', 1))),
        case("deep-nesting", raw(deep_json(100_000))),
        case("null-body", raw(b"null"), 422),
        case("xml-body", raw(b"<?xml version='1.0'?><a/>", "application/xml")),
        case("text-plain", encoded(lambda b: b, "text/plain")),
        case("no-content-type", encoded(lambda b: b, None)),
        case("form-encoded", encoded(lambda b: b"a=1&b=2", "application/x-www-form-urlencoded")),
        case("oversize", raw(b'{"x": "' + b"a" * oversize + b'"}')),
        Case(f"{prefix}-slow-upload", method, path, lambda ctx: slow(json.dumps(valid(ctx)).encode())(ctx), 408),
    ]
    if text_field is None:
        return cases
    return cases + [
        case("array-not-object", raw(b"[1, 2, 3]"), 422),
        case("nan-number", changed(lambda body: body.__setitem__(text_field, float("nan"))), 422),
        case("nul-in-text", with_text("before\u0000after"), 422),
        case("huge-text", with_text("x" * 300_000), 422, pointer=f"/{text_field}"),
        case("number-as-text", changed(lambda body: body.__setitem__(text_field, 1e308)), 422,
             pointer=f"/{text_field}"),
        case("lone-surrogate", changed(lambda body: body.__setitem__(text_field, "\ud800")), 422),
    ]


async def table_counts(host) -> dict[str, int]:
    """Rows in every table of the service's database (the outbox included)."""
    async with host.ctx.sessions() as session:
        tables = (await session.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version'"))).scalars().all()
        return {table: (await session.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one()
                for table in sorted(tables)}


async def quiet(host) -> dict[str, int]:
    """The table counts once the setup's own events have been consumed (two reads half a second apart agree)."""
    counts = await table_counts(host)
    while True:
        await asyncio.sleep(0.5)
        again = await table_counts(host)
        if again == counts and not again.get("outbox"):
            return counts
        counts = again


def published(host) -> int:
    return sum(host.relay.published_by.values())


def verdict(case: Case, response: httpx.Response) -> str | None:
    """What is wrong with the answer to a hostile case (None: refused as it should be)."""
    status = response.status_code
    if not 400 <= status < 500:
        return f"answered {status}: {response.text[:200]!r}"
    if case.status is not None and status != case.status:
        return f"answered {status} instead of {case.status}: {response.text[:200]!r}"
    if response.headers.get("content-type") != PROBLEM_JSON:
        return f"answered {status} as {response.headers.get('content-type')}: {response.text[:120]!r}"
    problem = response.json()
    if not {"type", "title", "status", "detail"} <= problem.keys() or problem["status"] != status:
        return f"not a problem document: {problem}"
    if case.slug is not None and problem["type"].rsplit("/", 1)[-1] != case.slug:
        return f"problem type {problem['type']} instead of {case.slug}"
    if case.pointer is not None and not any(e.get("pointer", "").startswith(case.pointer)
                                            for e in problem.get("errors", [])):
        return f"no field-level error at {case.pointer}: {problem.get('errors')}"
    return None


@pytest.fixture
def attack():
    """`await attack(host, key, cases, ctx)`: every case refused, nothing stored or published, still healthy."""

    async def run(host, key: str, cases: list[Case], ctx: Any = None) -> None:
        names = [case.name for case in cases]
        assert len(names) == len(set(names)), "case names are unique"
        before = await quiet(host)
        sent_before = published(host)
        wrong: dict[str, str] = {}
        async with httpx.AsyncClient(base_url=host.url, timeout=60) as client:
            for case in cases:
                arguments = case.request(ctx)
                headers = {"Authorization": f"Bearer {key}", **arguments.pop("headers", {})}
                try:
                    response = await client.request(case.method, case.path, headers=headers, **arguments)
                except httpx.HTTPError as error:  # the server dropped the connection: no answer at all
                    wrong[case.name] = f"no answer: {error!r}"
                    continue
                if problem := verdict(case, response):
                    wrong[case.name] = problem
            health = await client.get("/readyz")
        assert not wrong, f"{len(wrong)} of {len(cases)} hostile requests were not refused properly:\n" + "\n".join(
            f"  {name}: {problem}" for name, problem in wrong.items())
        assert health.status_code == 200, health.text
        assert await table_counts(host) == before, "a refused request stored something"
        assert published(host) == sent_before, "a refused request published an event"

    return run

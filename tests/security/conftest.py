"""Tenant-isolation harness: every HTTP route a service has, called with another tenant's key
and the first tenant's object ids.

A scenario makes tenant A's objects through the service's own API (or the events its
neighbours publish), then the harness lists the service's routes from the running app (the
OpenAPI operations plus the routes kept out of it), calls each one as tenant B with A's ids
and a request that would be valid, and checks that:
- nothing of A shows in B's answers (A's objects carry a marker string; B's requests never do),
- nothing of A changed (A's view through every GET route is the same before and after),
- a route naming one of A's server-made ids (invoice, batch, incident…) answers B with a 4xx,
- an operator route refuses a tenant key (401/403),
- the very same request made by A afterwards succeeds (so B's refusal was isolation, not a bad request)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Route

from parcours_runtime.tenancy import require_admin
from tests.hostile.conftest import quiet

MARK_A, MARK_B = "alphasecret", "betaplain"
SKIPPED_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/healthz", "/readyz"}
# Answers that change by themselves; attacked like the others, left out of A's before/after views.
ALWAYS_VOLATILE = ("GET /metrics",)  # process counters labelled by route template: no tenant data
TENANT_HEADER = "X-Parcours-Tenant"  # how a service token names the tenant it acts for


@dataclass
class Request:
    """One request to a route: `body(mark)` gives json / content / params for the tenant whose marker is `mark`."""

    body: Callable[[str], dict[str, Any]] = lambda mark: {}
    owner_status: tuple[int, ...] = ()  # statuses A's own request may get besides 2xx (with why, next to it)


@dataclass
class Scenario:
    """How to exercise one service. `setup(env)` makes A's objects (`env.api(method, path, **kw)` calls as A,
    `env.publish(*events)` as a neighbour would, `env.eventually`, `env.host`) and fills `env.ids` with the
    values of path parameters; `requests` are valid bodies per "METHOD /path";
    `own_ids` names the path parameters whose values the server made (B has no business with them);
    `exempt` lists routes not called, each with its reason."""

    service: str
    setup: Callable[..., Awaitable[None]]
    requests: dict[str, Request] = field(default_factory=dict)
    own_ids: tuple[str, ...] = ()
    exempt: dict[str, str] = field(default_factory=dict)
    signed: dict[str, str] = field(default_factory=dict)  # partner webhooks: the signature is the credential
    public: dict[str, str] = field(default_factory=dict)  # before any sign-in: attacked, no owner's control
    # routes that take the id of an object not arrived yet (same answer for any id, kept in the caller's tenant)
    ahead_of_arrival: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    volatile: tuple[str, ...] = ()  # GET routes whose answer changes with time (left out of the snapshot)
    operator: dict[str, str] = field(default_factory=dict)  # routes for an operator credential, not a tenant's
    # how a tenant signs in (default: its API key as a bearer token): `await sign_in(harness, mark, key)` gives the
    # headers of its requests and may set `harness.values[mark]` (e.g. its form token) for "{name}" placeholders
    sign_in: Callable[..., Awaitable[dict[str, str]]] | None = None
    # services this one calls, started first: `await neighbours(run_service)` gives the settings pointing at them
    neighbours: Callable[..., Awaitable[dict[str, Any]]] | None = None


def routes_of(app) -> list[tuple[str, str, Any]]:
    """("METHOD", "/path", route) for every HTTP operation of the app, documented or not (the route as
    included: its path with the router's prefix, its dependencies with the router's), plain Starlette routes too;
    an endpoint served plainly (parcours_runtime.plain_routes) once, as declared."""
    found = {}
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute | Route) and route.path not in SKIPPED_PATHS:
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                if (method, route.path) not in found or isinstance(route.original_route, APIRoute):
                    found[method, route.path] = route
    return [(method, path, route) for (method, path), route in found.items()]


def documented(app) -> set[str]:
    return {f"{method.upper()} {path}" for path, ops in app.openapi()["paths"].items() for method in ops}


def depends_on(route, call) -> bool:
    pending = [route.dependant] if isinstance(route.original_route, APIRoute) else []
    while pending:
        dependant = pending.pop()
        if dependant.call is call:
            return True
        pending += dependant.dependencies
    return False


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: ids[m.group(1)], path)


def filled(value, ids: dict[str, str]):
    """A request body with "{invoice_id}"-like placeholders replaced by tenant A's ids."""
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, ids) for v in value]
    return value


def params_of(path: str) -> list[str]:
    return re.findall(r"\{(\w+)(?::\w+)?\}", path)


def shown(response: httpx.Response) -> str:
    return f"{response.status_code} {response.text[:300]!r}"


def normalised(response: httpx.Response) -> tuple[int, str]:
    kind = response.headers.get("content-type", "")
    if "json" in kind:
        return response.status_code, json.dumps(response.json(), sort_keys=True)
    return response.status_code, response.content.decode("latin-1")


class Harness:
    def __init__(self, scenario: Scenario, host, key_a: str, key_b: str, publish, eventually, neighbours=()):
        self.scenario, self.host, self.publish, self.eventually = scenario, host, publish, eventually
        self.neighbours = list(neighbours)  # the services this one calls, which consume the setup's events too
        self.keys = {MARK_A: key_a, MARK_B: key_b}
        self.auth = {mark: {"Authorization": f"Bearer {key}"} for mark, key in self.keys.items()}
        self.client = httpx.AsyncClient(base_url=host.url, timeout=60)
        self.ids: dict[str, str] = {}
        self.values: dict[str, dict[str, str]] = {MARK_A: {}, MARK_B: {}}

    async def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        return await self.call(MARK_A, method, path, **kwargs)

    async def call(self, mark: str, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {**self.auth[mark], **kwargs.pop("headers", {})}
        for part in ("json", "data"):
            if part in kwargs:
                kwargs[part] = filled(kwargs[part], {**self.ids, **self.values[mark]})
        return await self.client.request(method, path, headers=headers, **kwargs)

    def request_of(self, method: str, path: str) -> Request:
        return self.scenario.requests.get(f"{method} {path}", Request())

    async def snapshot(self, routes) -> dict[str, tuple[int, str]]:
        """A's view through every GET route."""
        views = {}
        for method, path, _ in routes:
            name = f"{method} {path}"
            if method == "GET" and name not in self.scenario.exempt and name not in self.scenario.volatile + ALWAYS_VOLATILE:
                response = await self.call(MARK_A, method, fill(path, self.ids), **self.request_of(method, path).body(MARK_A))
                views[name] = normalised(response)
        return views

    async def run(self) -> None:
        scenario = self.scenario
        if scenario.sign_in is not None:
            for mark in (MARK_A, MARK_B):
                self.auth[mark] = await scenario.sign_in(self, mark, self.keys[mark])
        await scenario.setup(self)
        routes = routes_of(self.host.app)
        names = {f"{method} {path}" for method, path, _ in routes}
        assert documented(self.host.app) <= names
        missing = {f"{m} {p}": sorted(set(params_of(p)) - set(self.ids)) for m, p, _ in routes
                   if set(params_of(p)) - set(self.ids) and f"{m} {p}" not in scenario.exempt}
        assert not missing, f"give these path parameters a value of tenant A (or exempt the route): {missing}"
        without_body = {f"{m} {p}" for m, p, r in routes if getattr(r, "body_field", None) is not None
                        and f"{m} {p}" not in scenario.requests and f"{m} {p}" not in scenario.exempt}
        assert not without_body, f"give these routes a valid request body (or exempt them): {without_body}"

        for host in (self.host, *self.neighbours):  # the setup's events applied everywhere before the "before" views
            await quiet(host)
        before = await self.snapshot(routes)
        assert any(status == 200 for status, _ in before.values())
        leaks, wrong = [], []

        def operator(method: str, path: str, route) -> bool:
            return depends_on(route, require_admin) or f"{method} {path}" in scenario.operator

        attacked = [(m, p, r) for m, p, r in routes if f"{m} {p}" not in scenario.exempt]
        # B as itself, then B claiming to be A in the header services trust from their own peers
        passes = [(method, path, route, spoof) for spoof in ({}, {TENANT_HEADER: MARK_A})
                  for method, path, route in attacked]
        for method, path, route, spoof in passes:
            request = self.request_of(method, path)
            url = fill(path, self.ids)
            body = request.body(MARK_B)
            response = await self.call(MARK_B, method, url, **{**body, "headers": {**body.get("headers", {}), **spoof}})
            name = f"{method} {path}" + (f" ({TENANT_HEADER}: A)" if spoof else "")
            if response.status_code >= 500:
                wrong.append(f"{name}: server error {shown(response)}")
            elif operator(method, path, route) and response.status_code not in (401, 403):
                wrong.append(f"{name}: an operator route accepted a tenant key: {shown(response)}")
            elif f"{method} {path}" in scenario.signed and response.status_code < 400:
                wrong.append(f"{name}: an unsigned partner webhook was accepted: {shown(response)}")
            elif ((set(params_of(path)) | set(params_of(json.dumps(request.body(MARK_B).get("json")))))
                  & set(scenario.own_ids) and response.status_code < 400
                  and f"{method} {path}" not in scenario.ahead_of_arrival):
                wrong.append(f"{name}: B reached A's object: {shown(response)}")
            # (a problem's `instance` repeats the path, which may hold A's tenant id: that is B's own words)
            if MARK_A in response.content.decode("latin-1").lower().replace(url.lower(), ""):
                leaks.append(f"{name}: {shown(response)}")
        assert not leaks, "tenant B read tenant A's data:\n" + "\n".join(leaks)
        assert not wrong, "\n".join(wrong)
        after = await self.snapshot(routes)
        changed = {name: (before[name][0], before[name][1][:300], after[name][0], after[name][1][:300])
                   for name in before if before[name] != after[name]}
        assert not changed, f"tenant B changed what tenant A sees: {changed}"

        # The same requests, made by their owner, are accepted: B was refused for being B.
        refused = []
        for method, path, route in sorted(attacked, key=lambda r: r[0] == "DELETE"):
            if operator(method, path, route) or f"{method} {path}" in {**scenario.signed, **scenario.public}:
                continue
            request = self.request_of(method, path)
            response = await self.call(MARK_A, method, fill(path, self.ids), **request.body(MARK_A))
            done = response.status_code < 300 or (method == "POST" and response.status_code == 303)  # form, redirect
            if not done and response.status_code not in request.owner_status:
                refused.append(f"{method} {path}: {shown(response)}")
        assert not refused, "tenant A's own requests were refused (fix the scenario's request):\n" + "\n".join(refused)

    async def close(self) -> None:
        await self.client.aclose()


@pytest.fixture
async def isolation(run_service, tenant_key, publish, eventually):
    """`await isolation(scenario)`: the service started with two tenants, attacked route by route."""
    harnesses: list[Harness] = []

    async def run(scenario: Scenario) -> Harness:
        neighbours = []

        async def start_neighbour(name: str, **overrides):
            neighbours.append(await run_service(name, **overrides))
            return neighbours[-1]

        wiring = await scenario.neighbours(start_neighbour) if scenario.neighbours else {}
        host = await run_service(scenario.service, **scenario.settings, **wiring)
        key_a = await tenant_key(host, MARK_A, "Alpha SAS")
        key_b = await tenant_key(host, MARK_B, "Beta SAS")
        harness = Harness(scenario, host, key_a, key_b, publish, eventually, neighbours)
        harnesses.append(harness)
        harness.ids.update(tenant_id=MARK_A, key_id=key_a.split("_")[1])
        await harness.run()
        return harness

    yield run
    for harness in harnesses:
        await harness.close()


from tests.e2e.conftest import stack  # noqa: E402,F401  (the five services as processes, for the log scan)

"""Rate limits on the routes the internet reaches without an API key: token buckets per client address
(and, where a route asks, per identity tried, e.g. the account name of a sign-in). Each service declares
its limits once, in its ServiceDefinition; settings override their rates (`rate_limits`, e.g.
`{"link": "600/60"}`: a burst of 600 requests, refilled at 600 per 60 s; `"off"` disables one).

Beyond a limit: 429 problem+json with Retry-After, and the route does not run (nothing is recorded).
Buckets live in the process: limits are per replica (a global limit belongs to the ingress). Memory is
bounded: a bucket idle long enough to be full again is dropped (a fresh one is the same), and past
`rate_limit_max_keys` buckets the least recently used goes first, so a flood of distinct addresses
costs at most that many entries per limit.

The check is a plain ASGI step in front of the router: other routes pay one dict miss; a declared route
one regex match, one dict lookup and a little arithmetic."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from parcours_runtime.problems import PROBLEM_JSON, Problem, problem_response

STATE = "rate_limits"  # app.state attribute holding the service's RateLimiter


@dataclass(frozen=True)
class RateLimit:
    """A named limit: `default` is "REQUESTS/SECONDS"; `routes` ("GET /l/{token}", …) share one bucket per
    client address. A limit without routes is checked by the routes themselves (`check_rate`) on a key of
    their choosing (an account name)."""

    name: str
    default: str
    routes: tuple[str, ...] = ()
    what: str = "requests from this address"


def parse_rate(text: str) -> tuple[float, float] | None:
    """"600/60" → (600 requests, 60 s); "off" → None."""
    if text.strip().lower() == "off":
        return None
    requests, _, seconds = text.partition("/")
    try:
        count, period = float(requests), float(seconds)
    except ValueError:
        raise ValueError(f"a rate is REQUESTS/SECONDS (e.g. 600/60) or off, not {text!r}") from None
    if count < 1 or period <= 0:
        raise ValueError(f"a rate needs at least 1 request over a positive period, not {text!r}")
    return count, period


class TokenBuckets:
    """One bucket per key: `capacity` tokens, refilled at capacity/period per second; a request takes one."""

    def __init__(self, capacity: float, period: float, max_keys: int):
        self.capacity, self.period, self.max_keys = capacity, period, max_keys
        self.refill = capacity / period
        self._buckets: OrderedDict[Any, list[float]] = OrderedDict()  # key → [tokens, last seen], oldest first

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Any, now: float) -> float:
        """0 when the request may go on, else the seconds until a token is back."""
        bucket = self._buckets.get(key)
        if bucket is None:
            self._evict(now)
            self._buckets[key] = [self.capacity - 1, now]
            return 0.0
        self._buckets.move_to_end(key)
        tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self.refill)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return 0.0
        bucket[0] = tokens
        return (1 - tokens) / self.refill

    def _evict(self, now: float) -> None:
        # Least recently seen first; each bucket is dropped once, so this is O(1) per request on average.
        buckets = self._buckets
        while buckets:
            last_seen = next(iter(buckets.values()))[1]
            if now - last_seen < self.period and len(buckets) < self.max_keys:
                return
            buckets.popitem(last=False)


class ClientAddress:
    """The client's address as the rate limits see it: the TCP peer, or — when the peer is a trusted proxy —
    the first address from the right of X-Forwarded-For that is not one; IPv6 by /64 (one host's share)."""

    def __init__(self, trusted_proxies: Iterable[str]):
        self.trusted = tuple(ipaddress.ip_network(net, strict=False) for net in trusted_proxies)

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    def __call__(self, scope: Scope) -> str:
        peer = scope.get("client")
        host = peer[0] if peer else ""
        if self.trusted and self._is_trusted(host):
            forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
            hops = [hop.strip() for hop in ",".join(forwarded).split(",") if hop.strip()]
            while hops and self._is_trusted(hops[-1]):
                hops.pop()
            if hops:
                host = hops[-1][:64]
        if ":" in host:
            try:
                return str(ipaddress.ip_network(f"{host}/64", strict=False))
            except ValueError:
                return host
        return host


def _too_many(wait: float, what: str) -> Problem:
    seconds = max(1, math.ceil(wait))
    return Problem(429, f"Too many {what}; retry in {seconds} s.", headers={"Retry-After": str(seconds)})


@dataclass(frozen=True)
class _Template:
    path: str  # what the HTTP metrics read of a matched route


class _Guard:
    """Plain ASGI, in front of the router: requests to undeclared routes cost a dict miss on (method, first
    path segment); a declared route's request takes a token from its client's bucket, or gets a 429."""

    def __init__(self, app: ASGIApp, limiter: "RateLimiter"):
        self.app, self.limiter = app, limiter
        self.index: dict[tuple[str, str], list[tuple[Any, _Template, RateLimit, TokenBuckets]]] = {}
        for limit in limiter.limits.values():
            if limit.name not in limiter.buckets:
                continue
            for route in limit.routes:
                method, path = _route(route)
                regex = compile_path(path)[0]
                self.index.setdefault((method, _first_segment(path)), []).append(
                    (regex, _Template(path), limit, limiter.buckets[limit.name]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            candidates = self.index.get((scope["method"], _first_segment(path)))
            if candidates is not None:
                for regex, template, limit, buckets in candidates:
                    if regex.match(path):
                        wait = buckets.take(self.limiter.client(scope), time.monotonic())
                        if wait:
                            scope["route"] = template  # the metrics count the refusal under its route
                            await problem_response(Request(scope), _too_many(wait, limit.what))(scope, receive, send)
                            return
                        break
        await self.app(scope, receive, send)


def _route(route: str) -> tuple[str, str]:
    method, _, path = route.partition(" ")
    if not method.isupper() or not path.startswith("/"):
        raise ValueError(f"a rate-limited route is 'METHOD /path', not {route!r}")
    return method, path


def _first_segment(path: str) -> str:
    end = path.find("/", 1)
    return path[1:end] if end > 0 else path[1:]


class RateLimiter:
    """A service's limits and their buckets."""

    def __init__(self, limits: Iterable[RateLimit], *, overrides: dict[str, str], trusted_proxies: Iterable[str],
                 max_keys: int):
        self.limits = {limit.name: limit for limit in limits}
        unknown = set(overrides) - set(self.limits)
        if unknown:
            raise ValueError(f"rate_limits names unknown limits {sorted(unknown)}; known: {sorted(self.limits)}")
        self.client = ClientAddress(trusted_proxies)
        self.buckets: dict[str, TokenBuckets] = {}
        for name, limit in self.limits.items():
            rate = parse_rate(overrides.get(name, limit.default))
            if rate is not None:
                self.buckets[name] = TokenBuckets(*rate, max_keys=max_keys)

    def check(self, name: str, key: Any) -> None:
        """Raise 429 when `key` is over limit `name` (an unknown name is a programming error: KeyError)."""
        limit = self.limits[name]
        buckets = self.buckets.get(name)
        if buckets is None:
            return
        wait = buckets.take(key, time.monotonic())
        if wait:
            raise _too_many(wait, limit.what)

    def install(self, app: Any) -> None:
        """Put the declared routes behind their buckets (an ASGI check in front of the router), and say so in
        the OpenAPI document."""
        setattr(app.state, STATE, self)
        routes = {_route(route): limit for limit in self.limits.values() for route in limit.routes}
        if not routes:
            return
        app.add_middleware(_Guard, limiter=self)
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            spec = generate()
            for (method, path), limit in routes.items():
                operation = spec.get("paths", {}).get(path, {}).get(method.lower())
                if operation is not None:
                    operation.setdefault("responses", {}).setdefault("429", {
                        "description": f"Too many {limit.what}; Retry-After says when to try again",
                        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
            return spec

        app.openapi = openapi


def check_rate(request: Request, name: str, key: Any) -> None:
    """From a route: count one attempt on `key` (e.g. the account name tried) against limit `name`."""
    limiter = getattr(request.app.state, STATE, None)
    if limiter is not None:  # None: an app built without the service host (a test double)
        limiter.check(name, key)

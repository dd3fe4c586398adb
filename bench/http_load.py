"""A minimal HTTP/1.1 keep-alive load client on asyncio streams (it must cost less than the servers
it measures), driven closed loop (flat out, for a server's requests/s) or open loop (paced, for
latency, timed from when each request was due: a request waiting for a free connection counts).

Requests come from `next_request()`, which returns (path, body): body None sends a GET, bytes a POST."""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

NextRequest = Callable[[], tuple[str, bytes | None]]


class Connection:
    """One keep-alive connection that sends requests with fixed `headers` and reads each answer whole."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None):
        self.host, self.port = host, port
        self._head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": host, **(headers or {})}.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.first_error: str | None = None  # the first 4xx/5xx answer, status and body, to say what went wrong

    async def send(self, path: str, body: bytes | None = None) -> int:
        return (await self.exchange(path, body))[0]

    async def exchange(self, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One request, its answer's status and body; a connection that failed mid-way is closed (the next
        request opens a new one) and the error raised."""
        try:
            return await self._exchange(path, body)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        if body is None:
            self._writer.write(f"GET {path} HTTP/1.1\r\n{self._head}\r\n".encode())
        else:
            self._writer.write(f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0)
        answer = await self._reader.readexactly(length) if length else b""
        if status >= 400 and self.first_error is None:
            self.first_error = f"{status} {answer[:500].decode('utf-8', 'replace')}"
        if any(line.lower() == "connection: close" for line in lines):
            self.close()
        return status, answer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Pool:
    """`size` keep-alive connections to `url` with fixed headers, lent out one request at a time (a request
    waits for a free connection)."""

    def __init__(self, url: str, size: int, headers: dict[str, str] | None = None):
        self.connections = _pool(url, size, headers)
        self._free: asyncio.Queue[Connection] = asyncio.Queue()
        for connection in self.connections:
            self._free.put_nowait(connection)

    async def exchange(self, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        connection = await self._free.get()
        try:
            return await connection.exchange(path, body)
        finally:
            self._free.put_nowait(connection)

    def first_error(self) -> str | None:
        return _first_error(self.connections)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


def _with_frozen_heap(run):
    """The client's own full garbage collections stay short while it measures: what the benchmark process holds
    (an E2E run's results, seeded bodies) is frozen out of the collector's sight for the run, so that a collection
    of it does not stall the client and count as the server's latency."""
    @functools.wraps(run)
    async def measured(*args, **kwargs):
        gc.collect()
        gc.freeze()
        try:
            return await run(*args, **kwargs)
        finally:
            gc.unfreeze()

    return measured


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _pool(url: str, connections: int, headers: dict[str, str] | None) -> list[Connection]:
    host, port = url.removeprefix("http://").split(":")
    return [Connection(host, int(port), headers) for _ in range(connections)]


@_with_frozen_heap
async def flat_out(url: str, next_request: NextRequest, *, seconds: float, connections: int,
                   headers: dict[str, str] | None = None, server_pid: int | None = None) -> dict:
    """Closed loop: every connection sends its next request as soon as the last one is answered
    (after a warm-up of a fifth of `seconds`, at most 1 s, not counted). With `server_pid`, also the
    server process's CPU (user + system) per request."""
    pool = _pool(url, connections, headers)
    statuses: dict[int, int] = {}
    done = 0

    async def worker(connection: Connection, until: float) -> None:
        nonlocal done
        while time.perf_counter() < until:
            status = await connection.send(*next_request())
            statuses[status] = statuses.get(status, 0) + 1
            done += 1

    warm = time.perf_counter() + min(1.0, seconds / 5)
    await asyncio.gather(*(worker(c, warm) for c in pool))
    done, statuses = 0, {}
    cpu_before = _cpu_seconds(server_pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker(c, started + seconds) for c in pool))
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(server_pid) - cpu_before
    for connection in pool:
        connection.close()
    result = {"requests": done, "seconds": round(elapsed, 3), "rate": done / elapsed, "statuses": statuses,
              "first_error": _first_error(pool)}
    if server_pid is not None:
        result["cpu_ms_per_request"] = round(1000 * cpu / max(1, done), 3)
    return result


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@_with_frozen_heap
async def paced(url: str, next_request: NextRequest, *, rate: float, seconds: float, connections: int,
                headers: dict[str, str] | None = None) -> dict:
    """Open loop at `rate`: latency from when each request was due to its answer."""
    pool = Pool(url, connections, headers)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(request: tuple[str, bytes | None], due: float) -> None:
        status, _ = await pool.exchange(*request)
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    count = max(1, int(rate * seconds))
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(next_request(), due)))
    await asyncio.gather(*tasks)
    pool.close()
    return {"rate": round(rate, 1), "requests": count, "statuses": statuses, "first_error": pool.first_error(),
            **{f"p{p}_ms": percentile(latencies, p) for p in (50, 90, 99)}, "max_ms": max(latencies)}


def _first_error(pool: list[Connection]) -> str | None:
    return next((c.first_error for c in pool if c.first_error), None)


def refuse_unexpected(runs: list[dict], status: int, where: Path) -> None:
    """A run answered with anything but `status` measured something else: RuntimeError, with the first error."""
    bad: dict[int, int] = {}
    for run in runs:
        for answered, count in run["statuses"].items():
            if answered != status:
                bad[answered] = bad.get(answered, 0) + count
    if bad:
        first = next((run["first_error"] for run in runs if run.get("first_error")), None)
        raise RuntimeError(f"answers other than {status}: {bad}, the first: {first}; logs in {where}")


def start_yardstick(module: str, port: int, log_path: Path, *args: str) -> subprocess.Popen:
    """`python -m <module> --serve-bare PORT *args` (a benchmark's bare app), dying with us; once it listens."""
    from parcours_devstack.orphans import die_with_parent
    from parcours_devstack.ports import wait_for_port

    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", module, "--serve-bare", str(port), *args],
                                   cwd=Path(__file__).resolve().parent.parent, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=die_with_parent)
    wait_for_port("127.0.0.1", port, timeout=30)
    return process


def load_arguments(description: str) -> argparse.ArgumentParser:
    """The command line every server-against-yardstick benchmark takes (its own options added after)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=15, help="length of each measured run (default 15)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser


async def idle_cpu(pid: int, seconds: float) -> float:
    """The process's CPU seconds per second while nobody calls it (its consumer, relay, timers)."""
    before = _cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (_cpu_seconds(pid) - before) / seconds


async def versus(*, name: str, url: str, pid: int, bare_url: str, bare_pid: int, requests: Callable[[str], NextRequest],
                 expected: int, seconds: float, connections: int, headers: dict[str, str], log_dir: Path,
                 profile_dir: Path | None = None, say=print) -> dict:
    """The service against its yardstick in the same run: both flat out (the service's idle CPU measured between,
    to give its CPU per request without its background work), then both paced at half the service's rate.
    `requests(label)` gives each run its own request stream. With `profile_dir`, py-spy samples the service
    during its flat-out run. Any answer but `expected` makes it a RuntimeError."""
    from bench.profile import Profiler

    say(f"{name}: flat out, {connections} connections, {seconds:.0f} s each")
    bare_max = await flat_out(bare_url, requests("BARE"), seconds=seconds, connections=connections, headers=headers,
                              server_pid=bare_pid)
    idle = await idle_cpu(pid, min(3.0, seconds))
    profiler = Profiler(profile_dir) if profile_dir else None
    if profiler:
        profiler.start({name: pid})
    service_max = await flat_out(url, requests("MAX"), seconds=seconds, connections=connections, headers=headers,
                                 server_pid=pid)
    profile = profiler.stop().get(name) if profiler else None
    service_max["idle_cpu_share"] = round(idle, 4)
    service_max["cpu_ms_per_request_net"] = round(
        service_max["cpu_ms_per_request"] - 1000 * idle * service_max["seconds"] / max(1, service_max["requests"]), 3)
    half = service_max["rate"] / 2
    say(f"  bare {bare_max['rate']:.0f} req/s ({bare_max['cpu_ms_per_request']:.2f} CPU ms/request), {name} "
        f"{service_max['rate']:.0f} req/s ({service_max['cpu_ms_per_request']:.2f} CPU ms/request, "
        f"{service_max['cpu_ms_per_request_net']:.2f} without its idle CPU); paced at {half:.0f} req/s for latency")
    service_paced = await paced(url, requests("PACED"), rate=half, seconds=seconds, connections=connections,
                                headers=headers)
    bare_paced = await paced(bare_url, requests("BARE-PACED"), rate=half, seconds=seconds, connections=connections,
                             headers=headers)
    refuse_unexpected([bare_max, service_max, service_paced, bare_paced], expected, log_dir)
    result = {"connections": connections, "seconds": seconds,
              "bare": {"flat_out": bare_max, "paced": bare_paced}, name: {"flat_out": service_max, "paced": service_paced},
              "ratio": service_max["rate"] / bare_max["rate"] if bare_max["rate"] else None,
              # what the ratio would be if both were CPU-bound alone on a core: other jobs on the box do not count
              "cpu_ratio": bare_max["cpu_ms_per_request"] / max(1e-9, service_max["cpu_ms_per_request_net"])}
    if profile:
        result["profile"] = profile
    return result


def add_service_options(parser: argparse.ArgumentParser, service: str) -> None:
    """`--profile DIR` and `--service-env`, for a benchmark that starts one service against its yardstick."""
    parser.add_argument("--profile", metavar="DIR", help=f"py-spy {service} during its flat-out run, raw stacks into DIR")
    parser.add_argument("--service-env", action="append", default=[], metavar=f"PARCOURS_{service.upper()}_<SETTING>=VALUE")


def profiling_dir(args: argparse.Namespace) -> Path | None:
    """The `--profile` directory, made if need be (None: no profiling)."""
    if not args.profile:
        return None
    path = Path(args.profile)
    path.mkdir(parents=True, exist_ok=True)
    return path

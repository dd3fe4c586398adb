"""`make bench` / `python -m bench.run`: the bare pipeline, then Parcours end to end (throughput,
latency at half that rate, peak memory), in one run on one box. See bench/README.md.

    python -m bench.run                   # 20 000 invoices
    python -m bench.run --invoices 2000   # a quick look
    python -m bench.run --full            # 100 000 invoices
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import dunning_scan, e2e, plot, ingest_facturx, ingest_json, ingest_split, mail_sign, report, tracker_clicks, tracker_sweep  # noqa: E402
from bench.infra import Infra, pg_fast  # noqa: E402
from bench.monitor import ProcessMonitor  # noqa: E402
from bench.profile import Profiler  # noqa: E402
from parcours_devstack.services import SERVICES  # noqa: E402
from parcours_runtime import eventloop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 50


def _setting(overrides: dict[str, str], service: str, name: str, default):
    """A service setting as the benchmark runs it: the override, else the service's own default."""
    import importlib

    value = overrides.get(f"PARCOURS_{service.upper()}_{name.upper()}")
    if value is None:
        value = os.environ.get(f"PARCOURS_{service.upper()}_{name.upper()}")
    if value is None:
        settings = importlib.import_module(f"parcours_{service}.config").Settings
        return settings.model_fields[name].default if name in settings.model_fields else default
    return type(default)(value)


def _git() -> tuple[str, bool]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "libs", "services"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
        return commit or "unknown", dirty
    except OSError:
        return "unknown", False


def _quantiles(values_ms: list[float]) -> dict:
    return {"n": len(values_ms), **{f"p{p}": report.percentile(values_ms, p) for p in (50, 95, 99)},
            "max": max(values_ms) if values_ms else None,
            "mean": sum(values_ms) / len(values_ms) if values_ms else None}


async def run_bare(infra: Infra, monitor: ProcessMonitor, args, settings: dict, *, role: str, extra: list[str],
                   invoices: int | None = None) -> dict:
    invoices = invoices or args.invoices
    dsn = infra.database("bench_bare")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare", "--bootstrap", infra.bootstrap, "--dsn", dsn,
        "--smtp-port", str(infra.sink.smtp_port), "--invoices", str(invoices),
        "--partitions", str(settings["partitions"]), "--batch", str(settings["consumer_batch_size"]),
        "--smtp-concurrency", str(settings["smtp_concurrency"]),
        "--fetch-max-wait-ms", str(settings["fetch_max_wait_ms"]), "--hold", *extra,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    monitor.watch(role, proc.pid)
    monitor.mark(f"{role}-start")
    stderr = asyncio.create_task(proc.stderr.read())
    line = b" "
    while line and not line.startswith(b"{"):  # the result, printed while the process and its backends still run
        line = await proc.stdout.readline()
    monitor.mark(f"{role}-end")
    if line.strip():  # empty: it failed before printing, and has exited
        proc.stdin.write(b"\n")
        await proc.stdin.drain()
    if await proc.wait() != 0 or not line.strip():
        raise RuntimeError(f"the bare pipeline failed:\n{(await stderr).decode()[-3000:]}")
    result = json.loads(line)
    result["peak_rss_mb"] = monitor.peaks_mb()[role]
    cpu = {r: s for r, s in monitor.cpu_between(f"{role}-start", f"{role}-end").items()
           if r in (role, "broker", "postgres", "smtp-sink")}
    result["cpu_ms_per_invoice"] = {r: round(1000 * s / invoices, 2) for r, s in cpu.items()}
    return result


async def throughput(infra: Infra, monitor: ProcessMonitor, key: str, args, base: tuple[int, int],
                     profiler: Profiler | None) -> tuple[dict, dict | None]:
    urls = {name: p.url for name, p in infra.services.items()}
    bodies = e2e.invoice_bodies(f"TP-{int(time.time())}", args.invoices)
    async with e2e.Observer(infra.service_db("channels"), infra.service_db("tracker")) as observer:
        stats_before = await e2e.database_stats(infra.pg_dsn)
        monitor.mark("tp-start")
        if profiler:
            profiler.start({name: p.process.pid for name, p in infra.services.items()})
        if args.batch_size > 1:
            posting = asyncio.create_task(e2e.post_batches(urls["ingest"], key, bodies, args.batch_size,
                                                           max(1, min(args.concurrency, 4))))
        else:
            posting = asyncio.create_task(e2e.post_flat_out(urls["ingest"], key, bodies, args.concurrency))
        done = await observer.wait_for(base[1] + args.invoices, stall_seconds=args.stall_seconds,
                                       alive=lambda: not infra.dead_services())
        posts = await posting
        if args.batch_size > 1:
            await e2e.resolve_batches(urls["ingest"], key, posts)
        monitor.mark("tp-end")
        profile = profiler.stop() if profiler else None
        stats_after = await e2e.database_stats(infra.pg_dsn)
        accepted = posts.accepted
        at = await observer.dispatched_at([p.invoice_id for p in accepted])
        series = observer.series
    start = posts.started_at
    sent = sorted(v["sent"] for v in at.values() if "sent" in v)
    tracked = sorted(v["tracked"] for v in at.values() if "tracked" in v)
    n = len(accepted)
    last_202 = max(p.answered_at for p in accepted)
    cpu = monitor.cpu_between("tp-start", "tp-end")
    result = {
        "invoices": args.invoices, "accepted": n, "errors": posts.errors(), "complete": done,
        "missing": n - len(tracked),
        "ingest_seconds": round(last_202 - start, 3), "ingest_rate": round(n / (last_202 - start), 1),
        "sent_seconds": round(sent[-1] - start, 3) if sent else None,
        "sent_rate": round(len(sent) / (sent[-1] - start), 1) if sent else None,
        "e2e_seconds": round(tracked[-1] - start, 3) if tracked else None,
        "e2e_rate": round(len(tracked) / (tracked[-1] - start), 1) if tracked else None,
        "sustained_rate": None,
        "cpu_seconds": cpu,
        "cpu_ms_per_invoice": {role: round(1000 * s / max(1, n), 2) for role, s in cpu.items()},
        "box_busy": monitor.system_busy_between("tp-start", "tp-end"),
        # CPU of processes that are not part of the run (another job on the box): a warning sign.
        "foreign_cpu_seconds": round(monitor.busy_cpu_seconds_between("tp-start", "tp-end") - sum(cpu.values()), 1),
        "wall_seconds": monitor.seconds_between("tp-start", "tp-end"),
        "series": [{"t": round(s["t"] - start, 2), "sent": s["sent"] - base[0], "tracked": s["tracked"] - base[1]}
                   for s in series],
        "posted_series": _cumulative([p.answered_at - start for p in accepted]),
        # pg_stat_database is updated by backends at transaction end, with a small delay: approximate.
        "database_per_invoice": e2e.per_invoice(stats_before, stats_after, n,
                                                {"channels": observer.queries, "tracker": 2 * observer.queries}),
    }
    if len(tracked) >= 20:
        lo, hi = tracked[len(tracked) // 10], tracked[len(tracked) * 9 // 10]
        result["sustained_rate"] = round((len(tracked) * 9 // 10 - len(tracked) // 10) / (hi - lo), 1) if hi > lo else None
    return result, profile


def with_catch_up(monitor: ProcessMonitor, e2e_run: dict, idle_ms_per_second: dict[str, float]) -> dict[str, float]:
    """Each process's CPU per invoice for the throughput run plus the work it still did afterwards (the
    unhurried services, dunning and the portal, catch up once the burst is over), its idle cost over that
    time left out: what the platform spends per invoice all told, whatever lags."""
    seconds = monitor.seconds_between("tp-end", "catch-up-end")
    after = monitor.cpu_between("tp-end", "catch-up-end")
    n = max(1, e2e_run["accepted"])

    def caught_up(role: str) -> float:
        return max(0.0, after.get(role, 0.0) - idle_ms_per_second.get(role, 0.0) * seconds / 1000)
    return {role: round(1000 * (during + caught_up(role)) / n, 2) for role, during in e2e_run["cpu_seconds"].items()}


def _cumulative(offsets: list[float], step: float = 1.0) -> list[list[float]]:
    """[[t, count accepted by t], …] every `step` seconds."""
    if not offsets:
        return []
    ordered, out, i, t = sorted(offsets), [], 0, step
    while i < len(ordered):
        while i < len(ordered) and ordered[i] <= t:
            i += 1
        out.append([t, i])
        t += step
    return out


async def idle_cost(monitor: ProcessMonitor, seconds: float) -> dict[str, float]:
    """CPU ms per second each process spends with nothing to do (fetch loops, relays' ticks, periodic
    jobs): at a moderate rate this fixed cost is shared by few invoices."""
    monitor.mark("idle-start")
    await asyncio.sleep(seconds)
    monitor.mark("idle-end")
    return {role: round(1000 * s / seconds, 1) for role, s in monitor.cpu_between("idle-start", "idle-end").items()}


async def latency(infra: Infra, monitor: ProcessMonitor, key: str, args, rate: float, base: int, per_post: int,
                  profiler: Profiler | None = None) -> tuple[dict, dict | None]:
    """A paced (open loop) run at `rate` invoices/s, `per_post` invoices per POST (1: `/v1/invoices`; more: JSON
    arrays to `/v1/batches`): each invoice's time from its POST's 202 to sent and to dispatched recorded."""
    urls = {name: p.url for name, p in infra.services.items()}
    count = int(min(args.invoices, max(200, rate * args.latency_seconds)))
    bodies = e2e.invoice_bodies(f"LAT-{int(time.time())}", count)
    async with e2e.Observer(infra.service_db("channels"), infra.service_db("tracker")) as observer:
        stats_before = await e2e.database_stats(infra.pg_dsn)
        monitor.mark("lat-start")
        if profiler:
            profiler.start({name: p.process.pid for name, p in infra.services.items()})
        posting = asyncio.create_task(e2e.post_paced(urls["ingest"], key, bodies, rate, max_in_flight=args.concurrency,
                                                     batch_size=per_post))
        # Once the POSTs are all answered, only the accepted ones are awaited (a refused one never arrives).
        done = await observer.wait_for(lambda: base + (len(posting.result().accepted) if posting.done() else count),
                                       stall_seconds=args.stall_seconds, alive=lambda: not infra.dead_services())
        posts = await posting
        monitor.mark("lat-end")
        if per_post > 1:
            await e2e.resolve_batches(urls["ingest"], key, posts)
        profile = profiler.stop() if profiler else None
        stats_after = await e2e.database_stats(infra.pg_dsn)
        accepted = posts.accepted
        at = await observer.dispatched_at([p.invoice_id for p in accepted])
    to_sent = [1000 * (at[p.invoice_id]["sent"] - p.answered_at) for p in accepted if "sent" in at.get(p.invoice_id, {})]
    to_tracked = [1000 * (at[p.invoice_id]["tracked"] - p.answered_at) for p in accepted
                  if "tracked" in at.get(p.invoice_id, {})]
    start = posts.started_at
    cpu = monitor.cpu_between("lat-start", "lat-end")
    return {
        "target_rate": round(rate, 1), "invoices": count, "invoices_per_post": per_post,
        "accepted": len(accepted), "complete": done,
        # The paced run's CPU per invoice (small POSTs, small polls) against the throughput run's.
        "cpu_ms_per_invoice": {role: round(1000 * s / max(1, len(accepted)), 2) for role, s in cpu.items()},
        "box_busy": monitor.system_busy_between("lat-start", "lat-end"),
        "foreign_cpu_seconds": round(monitor.busy_cpu_seconds_between("lat-start", "lat-end") - sum(cpu.values()), 1),
        "wall_seconds": monitor.seconds_between("lat-start", "lat-end"),
        "database_per_invoice": e2e.per_invoice(stats_before, stats_after, max(1, len(accepted)),
                                                {"channels": observer.queries, "tracker": 2 * observer.queries}),
        "errors": posts.errors(),
        "achieved_post_rate": round(len(posts.posts) / max(1e-9, max(p.sent_at for p in posts.posts) - start), 1),
        "to_sent_ms": _quantiles(to_sent), "to_tracked_ms": _quantiles(to_tracked),
        "post_ms": _quantiles([1000 * (p.answered_at - p.sent_at) for p in accepted]),
        "samples": [[round(p.answered_at - start, 3), round(1000 * (at[p.invoice_id]["tracked"] - p.answered_at), 1)]
                    for p in sorted(accepted, key=lambda p: p.answered_at) if "tracked" in at.get(p.invoice_id, {})],
    }, profile


async def counts(infra: Infra) -> tuple[int, int]:
    """(sent, tracked as dispatched) so far."""
    async with e2e.Observer(infra.service_db("channels"), infra.service_db("tracker")) as observer:
        return await observer.counts()


async def warm_up(infra: Infra, key: str) -> None:
    """A few invoices through the whole flow first: groups joined, pools and caches warm."""
    urls = {name: p.url for name, p in infra.services.items()}
    await e2e.post_flat_out(urls["ingest"], key, e2e.invoice_bodies(f"WARM-{int(time.time())}", WARMUP), 8)
    async with e2e.Observer(infra.service_db("channels"), infra.service_db("tracker")) as observer:
        if not await observer.wait_for(WARMUP, stall_seconds=60, alive=lambda: not infra.dead_services()):
            raise RuntimeError(f"warm-up invoices never got through; see {infra.logs}")


SCALING = ((1, 4), (2, 4), (1, 8), (2, 8))  # (replicas of router and channels, partitions per topic)


async def scaling(args, run_dir: Path, overrides: dict[str, str], say) -> list[dict]:
    """The throughput run again on a fresh stack per shape: 1 vs 2 replicas of router and channels,
    4 vs 8 partitions. On 2 cores more processes mostly share the same CPU: the CPU per invoice is
    the figure that predicts a bigger cluster."""
    runs = []
    shape_args = argparse.Namespace(**{**vars(args), "invoices": args.scaling_invoices})
    for replicas, partitions in SCALING:
        label = f"{replicas}x-{partitions}p"
        infra = Infra(run_dir / f"scaling-{label}", keep_data=False)
        monitor = ProcessMonitor()
        try:
            await asyncio.to_thread(infra.start)
            shape = {**overrides, **{f"PARCOURS_{name.upper()}_TOPIC_PARTITIONS": str(partitions) for name in SERVICES}}
            await asyncio.to_thread(infra.start_services, shape, {"router": replicas, "channels": replicas})
            for role, pid in infra.pids().items():
                monitor.watch(role, pid, tree=role == "postgres")
            monitor.start()
            key = await e2e.setup_tenant({name: p.url for name, p in infra.services.items()})
            await warm_up(infra, key)
            await asyncio.to_thread(monitor.wait_idle, list(infra.services), timeout=60)
            e, _ = await throughput(infra, monitor, key, shape_args, await counts(infra), None)
        finally:
            monitor.stop()
            await asyncio.to_thread(infra.stop)
        cpu = sum(ms for role, ms in e["cpu_ms_per_invoice"].items() if role not in ("driver",))
        runs.append({"replicas": replicas, "partitions": partitions, "invoices": e["invoices"],
                     "complete": e["complete"], "e2e_rate": e["e2e_rate"], "sustained_rate": e["sustained_rate"],
                     "cpu_ms_per_invoice": round(cpu, 2), "foreign_cpu_seconds": e["foreign_cpu_seconds"]})
        say(f"  scaling {label}: {e['e2e_rate'] or 0:.0f}/s, {cpu:.1f} CPU ms per invoice")
    base = runs[0]["e2e_rate"] or 0
    for run in runs:
        run["speed_up"] = round(run["e2e_rate"] / base, 2) if base and run["e2e_rate"] else None
    return runs


async def main_async(args) -> dict:
    started = datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    run_dir = out / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = dict(kv.split("=", 1) for kv in args.service_env)
    settings = {
        "partitions": _setting(overrides, "router", "topic_partitions", 4),
        "consumer_batch_size": _setting(overrides, "channels", "consumer_batch_size", 500),
        "smtp_concurrency": _setting(overrides, "channels", "smtp_concurrency", 8),
        # the bare pipeline's consumers wait as long as the delivery path's (router, channels, tracker)
        "fetch_max_wait_ms": _setting(overrides, "router", "consumer_fetch_max_wait_ms", 50),
    }
    commit, dirty = _git()
    result: dict = {"meta": {
        "started": started.isoformat(timespec="seconds"), "commit": commit, "dirty": dirty,
        "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "pg_fast": pg_fast(), "invoices": args.invoices,
        "concurrency": args.concurrency, "batch_size": args.batch_size, "replicas": args.replicas, "service_env": overrides, **settings, "logs": str(run_dir / "logs"),
        "argv": sys.argv[1:],
    }}
    console = report.Console()
    say = lambda msg: console.print(f"[dim]{datetime.now():%H:%M:%S}[/] {msg}")  # noqa: E731
    infra = Infra(run_dir, keep_data=args.keep_data)
    monitor = ProcessMonitor()
    try:
        say(f"starting PostgreSQL (fsync {'off' if pg_fast() else 'on'}), Tansu, SMTP sink; logs in {run_dir / 'logs'}")
        await asyncio.to_thread(infra.start)
        for role, pid in infra.pids().items():
            monitor.watch(role, pid, tree=role == "postgres")
        monitor.watch("driver", os.getpid())
        monitor.start()
        # The HTTP benchmarks first, on a quiet PostgreSQL: after the million-row tables of the two below, autovacuum
        # works through them for minutes, and the clicks' p99 at half load was 33 ms against 16 without them.
        if args.tracker_invoices:  # tracker: link clicks vs a bare redirect (goal ≥ 50 %)
            result["tracker_clicks"] = await tracker_clicks.measure(server_dsn=infra.pg_dsn, bootstrap=infra.bootstrap,
                                                                    log_dir=infra.logs, seconds=args.click_seconds,
                                                                    invoices=min(2000, args.tracker_invoices), say=say)
        if args.ingest_seconds:  # ingest's POST /v1/invoices (JSON) vs a bare FastAPI + asyncpg insert (goal ≥ 60 %)
            result["ingest_json"] = await ingest_json.measure(server_dsn=infra.pg_dsn, bootstrap=infra.bootstrap,
                                                              log_dir=infra.logs, seconds=args.ingest_seconds, say=say)
        if args.dunning_invoices:  # dunning's scheduler on 1 M open invoices vs a plain indexed scan (goal ≤ 10×)
            result["dunning_scan"] = await dunning_scan.measure(infra.database("bench_dunning_scan"),
                                                                invoices=args.dunning_invoices, say=say)
            await asyncio.to_thread(infra.drop_database, "bench_dunning_scan")
        if args.tracker_invoices:  # tracker: the receipt sweep over 1 M timers
            result["tracker_sweep"] = await tracker_sweep.measure(infra.database("bench_tracker_sweep"),
                                                                  invoices=args.tracker_invoices, say=say)
            await asyncio.to_thread(infra.drop_database, "bench_tracker_sweep")
        if args.split_pages:  # ingest's batch PDF split vs qpdf --split-pages on the same file (goal ≥ 50 %)
            result["ingest_split"] = await asyncio.to_thread(ingest_split.measure, pages=args.split_pages, say=say)
        if args.facturx_builds:  # ingest's Factur-X builds per core vs a bare pypdf merge (goal ≥ 200/s per core)
            result["ingest_facturx"] = await asyncio.to_thread(ingest_facturx.measure, builds=args.facturx_builds, say=say)
        if args.mails:  # channels: emails rendered, DKIM-signed and accepted by a sink vs bare SMTP (goal ≥ 300/s)
            say(f"channels email: {args.mails} messages rendered, signed and handed to an SMTP sink")
            result["mail_sign"] = await asyncio.to_thread(mail_sign.measure, messages=args.mails, say=say)
        if "tracker_clicks" in result or "ingest_json" in result:
            await asyncio.to_thread(infra.fresh_broker)
            monitor.watch("broker", infra.pids()["broker"])
        if not args.skip_bare:
            say(f"bare pipeline: {args.invoices} invoices, 3 hops, SMTP pooled ×{settings['smtp_concurrency']}")
            result["bare"] = await run_bare(infra, monitor, args, settings, role="bare", extra=[])
            say(f"  → {result['bare']['rate']:.0f} invoices/s")
            say("the same with the architecture's own mechanics: contract events, inbox and outbox at every hop")
            result["bare_floor"] = await run_bare(infra, monitor, args, settings, role="bare-floor", extra=["--floor"])
            say(f"  → {result['bare_floor']['rate']:.0f} invoices/s")
            if args.bare_variants:
                result["bare_fanout"] = await run_bare(infra, monitor, args, settings, role="bare-fanout", extra=["--fanout"])
                say(f"  with fan-out consumers → {result['bare_fanout']['rate']:.0f} invoices/s")
                result["bare_floor_fanout"] = await run_bare(infra, monitor, args, settings, role="bare-floor-fanout",
                                                             extra=["--floor", "--fanout"])
                say(f"  with the mechanics and fan-out consumers → {result['bare_floor_fanout']['rate']:.0f} invoices/s")
                result["bare_per_message"] = await run_bare(infra, monitor, args, settings, role="bare-per-message",
                                                            extra=["--smtp-mode", "per-message"])
                say(f"  SMTP connection per message → {result['bare_per_message']['rate']:.0f} invoices/s")
        say("starting the services")
        await asyncio.to_thread(infra.start_services, overrides, args.replicas)
        for role, pid in infra.pids().items():
            monitor.watch(role, pid, tree=role == "postgres")
        urls = {name: p.url for name, p in infra.services.items()}
        key = await e2e.setup_tenant(urls)
        await warm_up(infra, key)
        await asyncio.to_thread(monitor.wait_idle, list(infra.services), timeout=60)
        result["memory_idle_mb"] = {name: round(psutil.Process(p.process.pid).memory_info().rss / 2**20, 1)
                                    for name, p in infra.services.items()}
        monitor.reset_peaks()
        base = await counts(infra)
        say(f"Parcours: posting {args.invoices} invoices, {args.concurrency} in flight")
        profiler = Profiler(run_dir) if args.profile else None
        result["e2e"], profile = await throughput(infra, monitor, key, args, base, profiler)
        if profile:
            result["profile"] = profile
        e = result["e2e"]
        say(f"  → ingest {e['ingest_rate']:.0f}/s, E2E {e['e2e_rate'] or 0:.0f}/s"
            + ("" if e["complete"] else f"  (INCOMPLETE: {e['missing']} not tracked)"))
        if not args.skip_latency and e["complete"]:
            say("waiting for every service to go idle (dunning and the tracker may still be catching up)")
            result["quiesce_seconds"] = await asyncio.to_thread(monitor.wait_idle, list(infra.services))
            monitor.mark("catch-up-end")
            say(f"  → {result['quiesce_seconds']:.0f} s")
            result["idle_cpu_ms_per_second"] = await idle_cost(monitor, min(10.0, args.latency_seconds))
            e["cpu_ms_per_invoice_with_catch_up"] = with_catch_up(monitor, e, result["idle_cpu_ms_per_second"])
            rate = args.latency_rate or (e["sustained_rate"] or e["e2e_rate"]) / 2
            say(f"latency: posting at {rate:.0f}/s for ~{args.latency_seconds:.0f} s")
            profiler = Profiler(run_dir, name="latency") if args.profile_latency else None
            result["latency"], profile = await latency(infra, monitor, key, args, rate, (await counts(infra))[1],
                                                       args.latency_batch, profiler)
            if profile:
                result["latency_profile"] = profile
            say(f"  → p99 {result['latency']['to_tracked_ms']['p99'] or 0:.0f} ms")
            if args.latency_batch > 1 and not args.skip_single_latency:
                # The same rate as single invoices, each its own POST: the heavier shape of the same load.
                await asyncio.to_thread(monitor.wait_idle, list(infra.services), timeout=120)
                say(f"latency, one invoice per POST: posting at {rate:.0f}/s for ~{args.latency_seconds:.0f} s")
                result["latency_single"], _ = await latency(infra, monitor, key, args, rate,
                                                            (await counts(infra))[1], 1)
                say(f"  → p99 {result['latency_single']['to_tracked_ms']['p99'] or 0:.0f} ms")
            if not args.skip_bare:
                count = result["latency"]["invoices"]
                await asyncio.to_thread(monitor.wait_idle, list(infra.services), timeout=120)
                say(f"bare pipeline latency: {count} invoices at {rate:.0f}/s, one at a time")
                result["bare_latency"] = await run_bare(infra, monitor, args, settings, role="bare-latency",
                                                        extra=["--pace", str(rate)], invoices=count)
                say(f"  → p99 {result['bare_latency']['latency_ms']['p99'] or 0:.0f} ms")
        if args.scaling:
            say(f"scaling: {args.scaling_invoices} invoices per shape, a fresh stack each")
            result["scaling"] = await scaling(args, run_dir, overrides, say)
        result["memory_peak_mb"] = {k: v for k, v in monitor.peaks_mb().items()
                                    if not k.startswith("bare")}
        result["dead_services"] = infra.dead_services()
        await asyncio.sleep(0.6)  # table statistics reach pg_stat_* within ~0.5 s
        result["db_tables"] = {name: await e2e.table_stats(infra.service_db(name)) for name in infra.services}
    finally:
        monitor.stop()
        say("stopping")
        await asyncio.to_thread(infra.stop)
    result["log_findings"] = _log_findings(infra.logs)
    result["memory_series"] = monitor.samples
    result["goals"] = report.evaluate(result)
    path = out / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    picture = plot.draw(result, path.with_suffix(".png"))
    report.print_report(result, console)
    console.print(f"\nWritten: {path}, {picture.name}  (logs: {run_dir / 'logs'})")
    return result


def _log_findings(logs: Path) -> dict[str, dict[str, int]]:
    """Warnings, errors and dead-lettered events per service log (a fast run that dropped work is no result)."""
    findings = {}
    for log in sorted(logs.glob("*.log")):
        counts = {"WARNING": 0, "ERROR": 0, "dead-lettering": 0}
        with open(log, errors="replace") as f:
            for line in f:
                for word in counts:
                    if word in line:
                        counts[word] += 1
        findings[log.stem] = {k: v for k, v in counts.items() if v}
    return {k: v for k, v in findings.items() if v}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=20000, help="invoices per throughput run (default 20000)")
    parser.add_argument("--full", action="store_true", help="100 000 invoices")
    parser.add_argument("--concurrency", type=int, default=32, help="POSTs in flight (default 32; batches: at most 4)")
    parser.add_argument("--batch-size", type=int, default=100,
                        help="invoices per POST /v1/batches in the throughput run (default 100; 1: one POST "
                             "/v1/invoices each)")
    parser.add_argument("--skip-bare", action="store_true", help="no bare pipeline (no ratio then)")
    parser.add_argument("--bare-variants", action="store_true",
                        help="also the bare pipeline with the fan-out consumers, and with one SMTP connection per message")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--dunning-invoices", type=int, default=None,
                        help="open invoices in the dunning scan benchmark (default 50 × --invoices, at most "
                             "1 000 000: 1 M by default; 0: skip it)")
    parser.add_argument("--tracker-invoices", type=int, default=None,
                        help="tracked invoices in the tracker sweep benchmark, which runs with the click benchmark "
                             "(default 50 × --invoices, at most 1 000 000; 0: skip both)")
    parser.add_argument("--scaling", action="store_true",
                        help="also the throughput run with 1 vs 2 replicas of router and channels and 4 vs 8 partitions")
    parser.add_argument("--scaling-invoices", type=int, default=5000, help="invoices per scaling run (default 5000)")
    parser.add_argument("--click-seconds", type=float, default=15,
                        help="length of each flat-out and paced run of the click benchmark (default 15)")
    parser.add_argument("--ingest-seconds", type=float, default=15,
                        help="length of each flat-out and paced run of the JSON ingest benchmark (default 15; 0: skip it)")
    parser.add_argument("--split-pages", type=int, default=2000,
                        help="pages of the batch PDF split benchmark (default 2000; 0: skip it)")
    parser.add_argument("--facturx-builds", type=int, default=None,
                        help="Factur-X builds in the document benchmark (default --invoices, at most 300; 0: skip it)")
    parser.add_argument("--mails", type=int, default=None,
                        help="emails in the render + DKIM + SMTP benchmark (default --invoices, at most 2000; 0: skip it)")
    parser.add_argument("--latency-seconds", type=float, default=40, help="length of the paced run (default 40)")
    parser.add_argument("--stall-seconds", type=float, default=60, help="give up when nothing moved for this long")
    parser.add_argument("--service-env", action="append", default=[], metavar="PARCOURS_<SVC>_<SETTING>=VALUE",
                        help="a service setting for this run (repeatable)")
    parser.add_argument("--profile", action="store_true", help="py-spy the services during the throughput run")
    parser.add_argument("--profile-latency", action="store_true", help="py-spy the services during the paced run")
    parser.add_argument("--latency-batch", type=int, default=None,
                        help="invoices per POST in the paced run whose p99 is the goal's (default --batch-size: the "
                             "throughput run's shape, whose max rate it halves; 1: single invoices to /v1/invoices)")
    parser.add_argument("--skip-single-latency", action="store_true",
                        help="no second paced run with one invoice per POST at the same rate")
    parser.add_argument("--latency-rate", type=float, default=None,
                        help="invoices/s of the paced run (default: half the throughput run's rate)")
    parser.add_argument("--replicas", action="append", default=[], metavar="SERVICE=N",
                        help="N processes of a service in the pipeline runs (same database and consumer group; "
                             "repeatable). Default: channels=2, the rest one each (the one-box shape, see "
                             "bench/README.md); --replicas channels=1 runs one of each")
    parser.add_argument("--keep-data", action="store_true", help="keep the PostgreSQL data directory")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    if args.full:
        args.invoices = 100_000
    if args.dunning_invoices is None:
        args.dunning_invoices = min(50 * args.invoices, 1_000_000)
    if args.tracker_invoices is None:
        args.tracker_invoices = min(50 * args.invoices, 1_000_000)
    if args.facturx_builds is None:
        args.facturx_builds = min(args.invoices, 300)
    if args.mails is None:
        args.mails = min(args.invoices, 2000)
    if args.latency_batch is None:
        args.latency_batch = args.batch_size
    replicas = {"channels": 2}  # the one-box shape (bench/README.md), unless a --replicas says otherwise
    for kv in args.replicas:
        name, _, count = kv.partition("=")
        if name not in SERVICES or not count.isdigit() or int(count) < 1:
            parser.error(f"--replicas {kv}: expected SERVICE=N, SERVICE one of {', '.join(SERVICES)}")
        replicas[name] = int(count)
    args.replicas = replicas
    for kv in args.service_env:
        if "=" not in kv or not kv.startswith("PARCOURS_"):
            parser.error(f"--service-env wants PARCOURS_<SERVICE>_<SETTING>=VALUE, got {kv!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    result = eventloop.run(main_async(parse_args(argv)))
    return 0 if result.get("e2e", {}).get("complete") else 1


if __name__ == "__main__":
    sys.exit(main())

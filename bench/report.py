"""Figures → goals with PASS/MISS, and the printed table. Goals are reported, never asserted."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bench.infra import service_of
from parcours_devstack.services import SERVICES

GOALS = {
    "e2e_rate": ("E2E throughput", "≥ 500 invoices/s"),
    "ratio_to_bare": ("E2E / bare pipeline", "≥ 50 %"),
    "p99_ms": ("latency p99 at ½ max rate", "≤ 500 ms"),
    "max_rss_mb": ("peak RSS per service", "≤ 150 MB"),
}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0–100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def evaluate(result: dict) -> list[dict]:
    e2e = result.get("e2e") or {}
    bare = result.get("bare") or {}
    latency = result.get("latency") or {}
    rss = {name: mb for name, mb in (result.get("memory_peak_mb") or {}).items() if service_of(name) in SERVICES}
    figures = {
        "e2e_rate": (e2e.get("e2e_rate"), lambda v: v >= 500, "{:.0f}/s"),
        "ratio_to_bare": (e2e.get("e2e_rate") / bare["rate"] * 100 if e2e.get("e2e_rate") and bare.get("rate") else None,
                          lambda v: v >= 50, "{:.1f} %"),
        "p99_ms": ((latency.get("to_tracked_ms") or {}).get("p99"), lambda v: v <= 500, "{:.0f} ms"),
        "max_rss_mb": (max(rss.values()) if rss else None, lambda v: v <= 150, "{:.0f} MB"),
    }
    goals = []
    for key, (value, ok, fmt) in figures.items():
        label, goal = GOALS[key]
        detail = ""
        if key == "p99_ms" and latency:
            single = ((result.get("latency_single") or {}).get("to_tracked_ms") or {}).get("p99")
            detail = _posted(latency.get("invoices_per_post", 1)) + (
                f"; one invoice per POST at the same rate: {single:.0f} ms" if single is not None else "")
        floor = (result.get("bare_floor") or {}).get("rate")
        if key == "ratio_to_bare" and floor and bare.get("rate"):
            detail = f"the pipeline with contract events, inbox and outbox alone: {floor / bare['rate']:.0%}" + (
                f"; E2E is {e2e['e2e_rate'] / floor:.0%} of that" if e2e.get("e2e_rate") else "")
        if key == "max_rss_mb" and rss:
            worst = max(rss, key=rss.get)
            over = [n for n, mb in rss.items() if mb > 150]
            detail = f"max: {worst}" + (f"; over: {', '.join(over)}" if over else "")
        goals.append({"goal": label, "target": goal, "value": None if value is None else round(value, 1),
                      "shown": "—" if value is None else fmt.format(value),
                      "status": "n/a" if value is None else ("PASS" if ok(value) else "MISS"), "detail": detail})
    return goals


def _posted(per_post: int) -> str:
    return "one POST per invoice" if per_post == 1 else f"POST /v1/batches of {per_post}"


def _platform_cpu(paced_run: dict) -> float:
    """A paced run's CPU ms per invoice, every process but the benchmark's own driver."""
    return sum(ms for role, ms in paced_run["cpu_ms_per_invoice"].items() if role != "driver")


def _fmt(value, fmt: str = "{:.0f}") -> str:
    return "—" if value is None else fmt.format(value)


def print_report(result: dict, console: Console | None = None) -> None:
    console = console or Console()
    meta = result["meta"]
    console.print(f"\n[bold]Parcours benchmark[/] {meta['started']}  commit {meta['commit']}"
                  f"{' (dirty tree)' if meta.get('dirty') else ''}  ·  {meta['cpus']} CPUs  ·  "
                  f"PostgreSQL fsync {'OFF (PARCOURS_PG_FAST=1)' if meta['pg_fast'] else 'on'}")
    batch = meta.get("batch_size", 1)
    posting = (f"POST /v1/batches of {batch}, {min(meta['concurrency'], 4)} in flight" if batch > 1
               else f"one POST /v1/invoices per invoice, {meta['concurrency']} in flight")
    paced_shape = _posted((result.get("latency") or {}).get("invoices_per_post", 1))
    shape = ", ".join(f"{name} ×{count}" for name, count in (meta.get("replicas") or {}).items() if count > 1)
    console.print(f"{meta['invoices']} invoices, {posting} (latency run: {paced_shape}), "
                  f"{'processes: ' + shape + ', ' if shape else ''}{meta['partitions']} partitions, "
                  f"consumer batch {meta['consumer_batch_size']}, smtp_concurrency {meta['smtp_concurrency']}")

    table = Table(title="Throughput", title_justify="left")
    for col in ("run", "invoices/s", "seconds", "notes"):
        table.add_column(col, justify="right" if col in ("invoices/s", "seconds") else "left")
    for key, label in (("bare", "bare pipeline, 3 hops"),
                       ("bare_floor", "bare pipeline + contract events, inbox, outbox"),
                       ("bare_fanout", "bare pipeline + fan-out consumers"),
                       ("bare_floor_fanout", "bare pipeline + contract events, inbox, outbox, fan-out"),
                       ("bare_per_message", "bare pipeline, SMTP connection per message")):
        bare = result.get(key)
        if bare:
            stages = bare["stages"]
            table.add_row(label, _fmt(bare["rate"]), _fmt(bare["seconds"], "{:.1f}"),
                          f"SMTP {bare['smtp_mode']} ×{bare['smtp_concurrency']}, {bare['mail_bytes']} B mails; "
                          f"mean batch {stages['router']['mean_batch']:.0f}/{stages['channels']['mean_batch']:.0f}/"
                          f"{stages['tracker']['mean_batch']:.0f}; "
                          f"{sum(bare['cpu_ms_per_invoice'].values()):.1f} CPU ms/invoice with infra")
    e2e = result.get("e2e")
    if e2e:
        table.add_row("Parcours: ingest accepted (POST 202)", _fmt(e2e["ingest_rate"]), _fmt(e2e["ingest_seconds"], "{:.1f}"),
                      f"{e2e['accepted']} accepted, errors {e2e['errors'] or 'none'}")
        table.add_row("Parcours: sent to SMTP (channels ledger)", _fmt(e2e["sent_rate"]), _fmt(e2e["sent_seconds"], "{:.1f}"), "")
        table.add_row("[bold]Parcours: E2E, dispatched & tracked[/]", f"[bold]{_fmt(e2e['e2e_rate'])}[/]",
                      _fmt(e2e["e2e_seconds"], "{:.1f}"),
                      f"sustained 10–90 %: {_fmt(e2e['sustained_rate'])}/s; missing {e2e['missing']}")
    console.print(table)

    latency = result.get("latency")
    if latency:
        table = Table(title=f"Latency at {latency['target_rate']:.0f}/s (½ of E2E max), {latency['invoices']} invoices, "
                            f"posted at {latency['achieved_post_rate']:.0f}/s", title_justify="left")
        for col in ("from POST 202 to", "p50 ms", "p95 ms", "p99 ms", "max ms"):
            table.add_column(col, justify="left" if col.startswith("from") else "right")
        single = result.get("latency_single") or {}
        rows = [(latency.get("to_sent_ms"), "SMTP accepted (channels sends.updated_at)"),
                (latency.get("to_tracked_ms"), "dispatched recorded (tracker journal.recorded_at)"),
                (latency.get("post_ms"), "(the POST itself, send → 202)"),
                (single.get("to_tracked_ms"), "one invoice per POST, same rate: dispatched recorded"),
                (single.get("post_ms"), "(one invoice per POST: the POST itself)"),
                ((result.get("bare_latency") or {}).get("latency_ms"),
                 "bare pipeline, same rate: source INSERT+produce → tracker stage commit")]
        for q, label in rows:
            if q:
                table.add_row(label, _fmt(q.get("p50")), _fmt(q.get("p95")), _fmt(q.get("p99")), _fmt(q.get("max")))
        console.print(table)

    memory, cpu = result.get("memory_peak_mb") or {}, (e2e or {}).get("cpu_ms_per_invoice") or {}
    paced, idle = (latency or {}).get("cpu_ms_per_invoice") or {}, result.get("idle_cpu_ms_per_second") or {}
    caught_up = (e2e or {}).get("cpu_ms_per_invoice_with_catch_up") or {}
    if memory:
        table = Table(title="Processes (peak RSS over throughput + latency runs; CPU during the throughput run, "
                            "with the catch-up after it, the paced run, and idle)", title_justify="left")
        for col in ("process", "peak RSS MB", "CPU ms / invoice", "CPU share", "with catch-up: CPU ms / invoice",
                    "paced: CPU ms / invoice", "idle: CPU ms / s"):
            table.add_column(col, justify="left" if col == "process" else "right")
        total_cpu = sum(cpu.values()) or 1
        for role in sorted(memory, key=lambda r: (service_of(r) not in SERVICES, r)):
            table.add_row(role + ("" if service_of(role) in SERVICES else " (infra)" if role != "driver" else " (bench)"),
                          _fmt(memory[role], "{:.1f}"), _fmt(cpu.get(role), "{:.2f}"),
                          _fmt(100 * cpu[role] / total_cpu if role in cpu else None, "{:.0f} %"),
                          _fmt(caught_up.get(role), "{:.2f}"), _fmt(paced.get(role), "{:.2f}"),
                          _fmt(idle.get(role), "{:.1f}"))
        console.print(table)
        if paced:
            console.print(f"Paced run ({paced_shape}): box busy {latency['box_busy'] * 100:.0f} %, "
                          f"{_platform_cpu(latency):.1f} CPU ms per invoice without the driver; foreign CPU "
                          f"{latency['foreign_cpu_seconds']:.0f} s in {latency['wall_seconds']:.0f} s.")
            single = result.get("latency_single")
            if single:
                console.print(f"Paced run, one invoice per POST: box busy {single['box_busy'] * 100:.0f} %, "
                              f"{_platform_cpu(single):.1f} CPU ms per invoice without the driver.")
        if e2e:
            console.print(f"Box busy during the throughput run: {e2e['box_busy'] * 100:.0f} % of {meta['cpus']} cores; "
                          f"total {sum(cpu.values()):.1f} CPU ms per invoice"
                          + (f", {sum(caught_up.values()):.1f} with the work the services caught up on after it "
                             f"({result['quiesce_seconds']:.0f} s, idle cost left out)." if caught_up else "."))
            foreign = e2e.get("foreign_cpu_seconds") or 0
            if foreign > 0.1 * e2e["wall_seconds"]:
                console.print(f"[yellow]Warning: processes outside the benchmark used {foreign:.0f} CPU s during the "
                              f"{e2e['wall_seconds']:.0f} s throughput run; wall-clock figures are pessimistic "
                              "(CPU per invoice is not affected).[/]")

    db = (e2e or {}).get("database_per_invoice")
    if db:
        table = Table(title="PostgreSQL work per invoice during the throughput run (pg_stat_database)",
                      title_justify="left")
        for col in ("database", "transactions", "rows written", "rows fetched"):
            table.add_column(col, justify="left" if col == "database" else "right")
        for name in SERVICES:
            if name in db:
                d = db[name]
                table.add_row(name, _fmt(d["transactions"], "{:.1f}"), _fmt(d["rows_written"], "{:.1f}"),
                              _fmt(d["rows_fetched"], "{:.1f}"))
        console.print(table)

    table = Table(title="Goals (issue 10)", title_justify="left")
    for col in ("goal", "target", "measured", "", "detail"):
        table.add_column(col)
    for g in result["goals"]:
        colour = {"PASS": "green", "MISS": "red"}.get(g["status"], "yellow")
        table.add_row(g["goal"], g["target"], g["shown"], f"[{colour}]{g['status']}[/]", g["detail"])
    console.print(table)
    for key, run in (("profile", ""), ("latency_profile", " (paced)")):
        for role, prof in (result.get(key) or {}).items():
            if prof["samples"]:
                top = ", ".join(f"{name} {pct}%" for name, pct in prof["self_by_package"][:6])
                console.print(f"[dim]py-spy {role}{run}: {top}[/]")
    if result.get("scaling"):
        table = Table(title="Scaling (a fresh stack per shape; 2 cores: watch the CPU per invoice)", title_justify="left")
        for col in ("router & channels", "partitions", "invoices/s", "speed-up", "CPU ms / invoice"):
            table.add_column(col, justify="right")
        for run in result["scaling"]:
            table.add_row(f"×{run['replicas']}", str(run["partitions"]), _fmt(run["e2e_rate"], "{:.0f}"),
                          _fmt(run["speed_up"], "{:.2f}×"), _fmt(run["cpu_ms_per_invoice"], "{:.1f}"))
        console.print(table)
    else:
        console.print("[dim]Replicas/partitions scaling not measured in this run (--scaling).[/]")

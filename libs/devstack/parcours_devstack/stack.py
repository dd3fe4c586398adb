"""`make run`: the whole Parcours stack on one machine.

Embedded PostgreSQL (one database per service), the Tansu broker, an SMTP sink, the five
services, a demo tenant with customers and invoices. External infrastructure is honoured:
PARCOURS_DATABASE_URL (a server DSN, postgresql://user:pass@host:port/postgres) and
KAFKA_BOOTSTRAP_SERVERS replace the embedded ones. State lives in .parcours/ (git-ignored);
`.parcours/stack.json` says where everything is. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
from pathlib import Path

from parcours_devstack import demo
from parcours_devstack.broker import TansuBroker
from parcours_devstack.dns_server import TxtZoneServer
from parcours_devstack.partners.dev import DevPartners
from parcours_devstack.ports import free_port
from parcours_devstack.postgres import EmbeddedPostgres, create_database, server_url
from parcours_devstack.services import SERVICES, ServiceProcess, service_env
from parcours_devstack.smtp_sink import SmtpSink

BASE_PORT = 8101
DEV_SETTINGS = {
    "ENVIRONMENT": "development",
    "CONSUMER_SESSION_TIMEOUT_MS": "2000",
}


def _port_or_free(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


class Stack:
    def __init__(self, state_dir: Path, *, with_demo: bool = True):
        self.state_dir = state_dir.resolve()
        self.logs = self.state_dir / "logs"
        self.with_demo = with_demo
        self.postgres: EmbeddedPostgres | None = None
        self.broker: TansuBroker | None = None
        self.sink: SmtpSink | None = None
        self.dns: TxtZoneServer | None = None  # the zone of the demo sender domain (what its check resolves)
        self.processes: dict[str, ServiceProcess] = {}
        self.partners = DevPartners()

    async def start(self) -> dict:
        self.logs.mkdir(parents=True, exist_ok=True)
        server_dsn = os.environ.get("PARCOURS_DATABASE_URL")
        if not server_dsn:
            self.postgres = EmbeddedPostgres(self.state_dir / "pg", port=_port_or_free(54329)).start()
            server_dsn = self.postgres.dsn
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            self.broker = TansuBroker(port=_port_or_free(19092), log_path=self.logs / "broker.log").start()
            bootstrap = self.broker.bootstrap_servers
        self.sink = SmtpSink(smtp_port=_port_or_free(2525), http_port=_port_or_free(8025), store_dir=self.state_dir / "mail")
        await self.sink.start()
        self.dns = await TxtZoneServer().start()

        ports = {name: _port_or_free(BASE_PORT + i) for i, name in enumerate(SERVICES)}
        tracker_url = f"http://127.0.0.1:{ports['tracker']}"
        console_token = secrets.token_urlsafe(24)  # the portal acts on dunning's API for its users' tenant
        per_service = {
            "channels": {"SMTP_PORT": str(self.sink.smtp_port), "TRACKER_PUBLIC_URL": tracker_url,
                         "BOUNCE_SMTP_PORT": str(_port_or_free(2526)),
                         "DNS_NAMESERVERS": json.dumps([self.dns.host]), "DNS_PORT": str(self.dns.port)},
            "tracker": {"PUBLIC_URL": tracker_url, "PORTAL_URL": f"http://127.0.0.1:{ports['portal']}"},
            "dunning": {"TIME_TRAVEL": "true", "TICK_SECONDS": "5", "CONSOLE_TOKEN": console_token},
        }
        partner_env = await self.partners.start(tracker_url=tracker_url, document_token=secrets.token_urlsafe(24),
                                                channels_url=f"http://127.0.0.1:{ports['channels']}")
        per_service["channels"].update(partner_env["channels"], INGEST_URL=f"http://127.0.0.1:{ports['ingest']}")
        per_service["ingest"] = {**per_service.get("ingest", {}), **partner_env["ingest"]}
        per_service["router"] = {**per_service.get("router", {}), **partner_env["router"]}
        per_service["portal"] = {"INGEST_URL": f"http://127.0.0.1:{ports['ingest']}",
                                 "INGEST_DOCUMENT_TOKEN": partner_env["ingest"]["DOCUMENT_READER_TOKEN"],
                                 "SMTP_PORT": str(self.sink.smtp_port), "PUBLIC_URL": f"http://127.0.0.1:{ports['portal']}",
                                 "DUNNING_URL": f"http://127.0.0.1:{ports['dunning']}", "DUNNING_CONSOLE_TOKEN": console_token}
        for name in SERVICES:
            database = f"parcours_{name}"
            create_database(server_dsn, database)
            env = service_env(name, database_url=server_url(server_dsn, database), bootstrap=bootstrap, port=ports[name],
                              extra={**DEV_SETTINGS, **per_service.get(name, {})})
            self.processes[name] = ServiceProcess(name, env, ports[name], log_path=self.logs / f"{name}.log").start()
        for process in self.processes.values():
            await asyncio.to_thread(process.wait_ready, 90)

        urls = {name: p.url for name, p in self.processes.items()}
        stack_file = self.state_dir / "stack.json"
        previous = json.loads(stack_file.read_text()) if stack_file.exists() else {}
        api_key = await demo.ensure_tenant(urls["ingest"], previous.get("api_key"))
        console = await demo.ensure_console_user(
            urls["portal"], previous.get("console", {}).get("password") or secrets.token_urlsafe(12))
        sender_domain = await demo.ensure_sender_domain(urls["channels"], api_key, self.dns)
        description = {
            "services": urls,
            "smtp_sink": {"smtp": self.sink.smtp_address, "http": self.sink.http_url},
            "partners": self.partners.urls(),
            "dns": f"{self.dns.host}:{self.dns.port}",
            "sender_domain": sender_domain,
            "tenant": demo.DEMO_TENANT,
            "api_key": api_key,
            "console": console,
            "postgres": server_dsn,
            "kafka": bootstrap,
            "logs": str(self.logs),
        }
        stack_file.write_text(json.dumps(description, indent=2) + "\n")
        if self.with_demo:
            description["demo_invoices"] = await demo.load_demo(urls, api_key)
        return description

    def dead_services(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.process is not None and p.process.poll() is not None]

    async def stop(self) -> None:
        for process in self.processes.values():
            await asyncio.to_thread(process.terminate)
        await self.partners.stop()
        if self.sink:
            await self.sink.stop()
        if self.dns:
            await self.dns.stop()
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()


def _print_summary(d: dict) -> None:
    print("\nParcours is running.\n")
    for name, url in d["services"].items():
        print(f"  {name:<9} {url}   (OpenAPI: {url}/docs)")
    print(f"  mail      {d['smtp_sink']['http']}   (SMTP {d['smtp_sink']['smtp']})")
    checks = ", ".join(f"{name} {status}" for name, status in d["sender_domain"]["checks"].items())
    print(f"  sender    {d['sender_domain']['domain']}: {'PASS' if d['sender_domain']['ok'] else 'FAIL'} ({checks}; "
          f"loopback DNS {d['dns']})")
    print(f"  postgres  {d['postgres']}")
    print(f"  kafka     {d['kafka']}")
    print(f"\n  tenant    {d['tenant']}\n  api key   {d['api_key']}")
    print(f"  console   {d['console']['url']}   sign in as {d['console']['email']} / {d['console']['password']}")
    if d.get("demo_invoices"):
        print(f"  demo      {len(d['demo_invoices'])} invoice(s) posted; watch them arrive in the mailbox above.")
    print(f"\n  Everything above is in .parcours/stack.json; logs in {d['logs']}. Ctrl-C stops the stack.\n", flush=True)


async def _main(args: argparse.Namespace) -> int:
    stack = Stack(Path(args.state_dir), with_demo=not args.no_demo)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        _print_summary(await stack.start())
        while not stop.is_set():
            dead = stack.dead_services()
            if dead:
                print(f"service(s) stopped unexpectedly: {', '.join(dead)}; see {stack.logs}", flush=True)
                return 1
            try:
                await asyncio.wait_for(stop.wait(), timeout=1)
            except TimeoutError:
                pass
        print("stopping…", flush=True)
        return 0
    finally:
        await stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the whole Parcours stack locally.")
    parser.add_argument("--state-dir", default=".parcours", help="where databases, mail and logs live")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo customers and invoices")
    raise SystemExit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()

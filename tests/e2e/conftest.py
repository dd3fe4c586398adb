"""The five services as real processes on one broker, one PostgreSQL server (a database
each) and one SMTP sink."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest

from parcours_devstack import demo
from parcours_devstack.ports import free_port
from parcours_devstack.services import SERVICES, ServiceProcess
from parcours_devstack.smtp_sink import SmtpSink

DOCUMENT_TOKEN = "e2e-document-reader-token"
CONSOLE_TOKEN = "e2e-dunning-console-token"


@dataclass
class RunningStack:
    processes: dict[str, ServiceProcess]
    sink: SmtpSink
    api_key: str

    def url(self, service: str) -> str:
        return self.processes[service].url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def restart(self, service: str, *, crash: bool) -> None:
        process = self.processes[service]
        if crash:
            process.kill()
        else:
            assert process.terminate() == 0, f"{service} did not stop cleanly"
        process.start()
        await asyncio.to_thread(process.wait_ready, 60)


@pytest.fixture
async def stack(spawn_service):
    sink = SmtpSink()
    await sink.start()
    ports = {name: free_port() for name in SERVICES}
    tracker_url = f"http://127.0.0.1:{ports['tracker']}"
    extra = {
        "channels": {"SMTP_PORT": str(sink.smtp_port), "TRACKER_PUBLIC_URL": tracker_url,
                     "BOUNCE_SMTP_PORT": str(free_port())},
        "tracker": {"PUBLIC_URL": tracker_url, "PORTAL_URL": f"http://127.0.0.1:{ports['portal']}"},
        "dunning": {"TIME_TRAVEL": "true", "TICK_SECONDS": "3600", "CONSOLE_TOKEN": CONSOLE_TOKEN},
        # The portal reads invoice documents from ingest by claim check, and dunning's plans with its console token.
        "ingest": {"DOCUMENT_READER_TOKEN": DOCUMENT_TOKEN},
        "portal": {"INGEST_URL": f"http://127.0.0.1:{ports['ingest']}", "INGEST_DOCUMENT_TOKEN": DOCUMENT_TOKEN,
                   "DUNNING_URL": f"http://127.0.0.1:{ports['dunning']}", "DUNNING_CONSOLE_TOKEN": CONSOLE_TOKEN},
    }
    processes = {name: spawn_service(name, port=ports[name], extra=extra.get(name)) for name in SERVICES}
    await asyncio.gather(*(asyncio.to_thread(p.wait_ready, 90) for p in processes.values()))
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{processes['ingest'].url}/v1/tenants", json={"name": "ACME SAS", "tenant_id": "acme"},
                                    headers={"Authorization": f"Bearer {demo.ADMIN_TOKEN}"})
        assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    for service, path in (("router", "/v1/customers"), ("tracker", "/v1/invoices")):
        await demo.wait_until_known(processes[service].url, path, key)
    try:
        yield RunningStack(processes, sink, key)
    finally:
        await sink.stop()

"""Partner channels under test: the real channels service depositing at partner simulators
served over real HTTP on loopback, fetching the document from a real ingest (the claim check),
with a real broker and PostgreSQL."""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from parcours_channels.store.partner_submissions import PartnerSubmission
from parcours_contracts import DispatchRequested, Recipient
from parcours_devstack.partners import PartnerServer
from parcours_devstack.partners.chorus_pro import ChorusProSimulator
from parcours_runtime.service import ServiceHost

READER_TOKEN = "test-document-reader-token"
BUYER_SIRET = "55210055400013"


def _ingest_documents():
    """The ingest tests' document builders (valid UBL/CII/Factur-X), reused rather than copied."""
    path = Path(__file__).parents[2] / "ingest" / "conftest.py"
    spec = importlib.util.spec_from_file_location("ingest_test_documents", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOCUMENTS = _ingest_documents()


@dataclass
class Ingest:
    host: ServiceHost
    keys: dict[str, str]  # API key by tenant
    issue_key: Callable

    async def post(self, *, kind: str = "cii", number: str | None = None, tenant: str = "acme") -> tuple[uuid.UUID, str]:
        """Post an invoice of `tenant` to ingest as `kind` (cii, facturx, json); its id and number."""
        if tenant not in self.keys:
            self.keys[tenant] = await self.issue_key(self.host, tenant_id=tenant)
        body = copy.deepcopy(DOCUMENTS.VALID_INVOICE)
        body["number"] = number or f"F-{uuid.uuid4().hex[:10]}"
        body["buyer"]["siret"] = BUYER_SIRET  # a public buyer's establishment: what Chorus Pro routes on
        if kind == "json":
            content, media_type = json.dumps(body).encode(), "application/json"
        elif kind == "facturx":
            content, media_type = DOCUMENTS.facturx_pdf(DOCUMENTS.cii_document(body)), "application/pdf"
        else:
            content, media_type = DOCUMENTS.cii_document(body), "application/xml"
        async with httpx.AsyncClient(base_url=self.host.url, timeout=60) as client:
            response = await client.post("/v1/invoices", content=content, headers={
                "Authorization": f"Bearer {self.keys[tenant]}", "Content-Type": media_type})
        assert response.status_code == 202, response.text
        return uuid.UUID(response.json()["invoice_id"]), body["number"]


@pytest.fixture
async def ingest(run_service, tenant_key, monkeypatch) -> Ingest:
    """A real ingest that lets services holding the reader token read documents; channels point at it."""
    monkeypatch.setenv("PARCOURS_INGEST_DOCUMENT_READER_TOKEN", READER_TOKEN)
    host = await run_service("ingest")
    monkeypatch.setenv("PARCOURS_CHANNELS_INGEST_URL", host.url)
    monkeypatch.setenv("PARCOURS_CHANNELS_INGEST_DOCUMENT_TOKEN", READER_TOKEN)
    return Ingest(host, {"acme": await tenant_key(host, tenant_id="acme")}, tenant_key)


@pytest.fixture
async def serve() -> AsyncIterator[Callable]:
    """Factory: serve a simulator app over HTTP; its base URL."""
    servers: list[PartnerServer] = []

    async def start(app) -> str:
        server = await PartnerServer(app).start()
        servers.append(server)
        return server.url

    yield start
    for server in reversed(servers):
        await server.stop()


@pytest.fixture
async def chorus(serve, monkeypatch) -> ChorusProSimulator:
    """A Chorus Pro simulator, and channels configured for it (quick follow-up for tests)."""
    simulator = ChorusProSimulator()
    simulator.add_structure(BUYER_SIRET, "Ville de Test")
    url = await serve(simulator.app())
    for name, value in {"OAUTH_URL": f"{url}/api/oauth/token", "API_URL": url, "CLIENT_ID": simulator.client_id,
                        "CLIENT_SECRET": simulator.client_secret, "LOGIN": simulator.login,
                        "PASSWORD": simulator.password, "POLL_SECONDS": "0.2", "FIRST_CHECK_SECONDS": "0.1",
                        "LONGEST_CHECK_SECONDS": "0.4", "TIMEOUT_SECONDS": "10"}.items():
        monkeypatch.setenv(f"PARCOURS_CHANNELS_CHORUS_PRO_{name}", value)
    return simulator


@pytest.fixture
def partner_dispatch(make_dispatch) -> Callable[..., DispatchRequested]:
    """Factory: the DispatchRequested router publishes for an invoice ingest holds."""

    def make(invoice_id: uuid.UUID, number: str, *, channel: str, recipient: str = "factures@buyer.example",
             has_pdf: bool = False, tenant_id: str = "acme") -> DispatchRequested:
        return make_dispatch(invoice_id=invoice_id, channel=channel, fallback_channels=["email_link"], tenant_id=tenant_id,
                             recipients=[Recipient(email=recipient)], invoice={"number": number, "has_pdf": has_pdf})

    return make


@pytest.fixture
def submission() -> Callable:
    """`await submission(host, dispatch_id)`: the partner_submissions row of a dispatch, or None."""

    async def read(host: ServiceHost, dispatch_id: uuid.UUID) -> PartnerSubmission | None:
        async with host.ctx.sessions() as session:
            return await session.get(PartnerSubmission, dispatch_id)

    return read


@pytest.fixture
def given_up(submission, eventually) -> Callable:
    """`await given_up(host, dispatch_id, what)`: the submission once it is failed (given up)."""

    async def wait(host: ServiceHost, dispatch_id: uuid.UUID, what: str) -> PartnerSubmission:
        async def failed():
            row = await submission(host, dispatch_id)
            return row if row is not None and row.state == "failed" else None

        return await eventually(failed, what=what, timeout=30)

    return wait


@pytest.fixture
def crash_and_restart(spawn_service, make_database, eventually) -> Callable:
    """`await crash_and_restart(publish_dispatch, accepted, recorded)`: channels as a real process;
    once `accepted()` (the partner took the submission but holds its answer), kill -9 it, start it
    again on the same database, and wait until `recorded(database_url)`."""
    import asyncio

    async def run(publish_dispatch, accepted, recorded):
        database_url = make_database("channels")
        extra = {"BOUNCE_SMTP_PORT": "0", "SMTP_PORT": "1"}
        first = await asyncio.to_thread(spawn_service("channels", database_url=database_url, extra=extra).wait_ready, 60)
        await publish_dispatch()
        await eventually(accepted, what="the partner accepted the submission", timeout=60)
        first.kill()
        await asyncio.to_thread(spawn_service("channels", database_url=database_url, extra=extra).wait_ready, 60)
        return await eventually(lambda: recorded(database_url), what="the restarted channels recorded it", timeout=60)

    return run


async def submission_state(database_url: str, dispatch_id: uuid.UUID) -> tuple[str, int] | None:
    """(state, attempts) of a dispatch's submission, read from the channels database."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(PartnerSubmission.state, PartnerSubmission.attempts)
                                      .where(PartnerSubmission.dispatch_id == dispatch_id))).first()
    finally:
        await engine.dispose()
    return (row.state, row.attempts) if row else None


@pytest.fixture
def submission_in() -> Callable:
    """`await submission_in(database_url, dispatch_id)`: (state, attempts) of a spawned channels' row."""
    return submission_state


@pytest.fixture
def outcomes(eventually) -> Callable:
    """`await outcomes(channels, count)`: the outcome events, once there are `count` (channels also
    consume tenant events, so counting handled messages would not say the dispatch was handled)."""

    async def wait(channels, count: int = 1) -> list:
        async def enough():
            found = await channels.outcomes()
            return found if len(found) >= count else None

        return await eventually(enough, what=f"{count} outcome event(s)", timeout=60)

    return wait

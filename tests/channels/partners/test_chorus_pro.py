"""chorus_pro end to end: the channels service deposits the invoice's document (fetched from a
real ingest) at a Chorus Pro simulator over real HTTP, follows the flux and the invoice, and
reports each step on the broker."""

from __future__ import annotations

import json
import uuid


from parcours_channels.domain.chorus_pro import FileToDeposit, deposit_file_name, limit_violations
from parcours_channels.store.partner_submissions import DONE, FAILED, REJECTED
from parcours_contracts import DeliveryAcked, DispatchFailed, IncidentOpened, InvoiceDispatched, topics

ACKED = (topics.DELIVERY_ACKED,)


async def acks_of(channels, invoice_id) -> list[str]:
    return [e.status for e in await channels.read(*ACKED) if isinstance(e, DeliveryAcked) and e.invoice_id == invoice_id]


async def test_a_factur_x_is_deposited_once_and_followed_to_payment(
        outcomes, submission, ingest, chorus, start_channels, partner_dispatch, eventually):
    channels = await start_channels()
    invoice_id, number = await ingest.post(kind="facturx")
    request = partner_dispatch(invoice_id, number, channel="chorus_pro", has_pdf=True)
    await channels.publish(request)
    [dispatched] = await outcomes(channels)
    assert isinstance(dispatched, InvoiceDispatched) and dispatched.channel == "chorus_pro"
    [flux] = chorus.deposits_of(number)
    assert dispatched.messages[0].message_id == flux.number
    assert flux.syntax == "IN_DP_E2_CII_FACTURX" and len(flux.file_name) <= 50 and flux.file_name.endswith(".pdf")

    await eventually(lambda: _has(channels, invoice_id, "MISE_A_DISPOSITION"), what="made available", timeout=60)
    chorus.advance(number, "SERVICE_FAIT")
    await eventually(lambda: _has(channels, invoice_id, "APPROUVEE"), what="service fait", timeout=60)
    chorus.advance(number, "MISE_EN_PAIEMENT")
    await eventually(lambda: _has(channels, invoice_id, "PAIEMENT_TRANSMIS"), what="paid", timeout=60)

    assert await acks_of(channels, invoice_id) == ["DEPOSEE", "MISE_A_DISPOSITION", "APPROUVEE", "PAIEMENT_TRANSMIS"]
    row = await submission(channels.host, request.dispatch_id)
    assert row.state == DONE and row.next_check_at is None and row.partner_ref == flux.number
    assert chorus.deposits == 1


async def _has(channels, invoice_id, status) -> bool:
    return status in await acks_of(channels, invoice_id)


async def test_a_rejected_flux_fails_for_good_so_router_falls_back(
        submission, ingest, chorus, start_channels, partner_dispatch, eventually):
    channels = await start_channels()
    invoice_id, number = await ingest.post(kind="cii")
    chorus.reject_next("Le SIRET du destinataire est inconnu")
    request = partner_dispatch(invoice_id, number, channel="chorus_pro")
    await channels.publish(request)

    async def failed():
        return [e for e in await channels.outcomes() if isinstance(e, DispatchFailed)]

    [failure] = await eventually(failed, what="dispatch.failed after IN_REJETE", timeout=60)
    assert failure.permanent and failure.fallback_channels == ["email_link"]
    assert "IN_REJETE" in failure.reason and "SIRET du destinataire" in failure.reason
    assert chorus.deposits_of(number)[0].syntax == "IN_DP_E1_CII_16B"
    assert (await submission(channels.host, request.dispatch_id)).state == REJECTED
    assert await acks_of(channels, invoice_id) == []


async def test_a_503_is_retried_without_a_second_deposit(
        outcomes, submission, ingest, chorus, start_channels, partner_dispatch):
    channels = await start_channels()
    invoice_id, number = await ingest.post(kind="cii")
    chorus.fail_next(1, status=503)
    request = partner_dispatch(invoice_id, number, channel="chorus_pro")
    await channels.publish(request)
    [dispatched] = await outcomes(channels)
    assert isinstance(dispatched, InvoiceDispatched)
    assert len(chorus.deposits_of(number)) == 1 and chorus.deposits == 1
    assert (await submission(channels.host, request.dispatch_id)).attempts == 2


async def test_no_integration_report_in_time_gives_up_and_the_tracker_opens_an_incident(
        outcomes, submission, ingest, chorus, start_channels, partner_dispatch, eventually, monkeypatch, run_service):
    monkeypatch.setenv("PARCOURS_CHANNELS_CHORUS_PRO_INTEGRATION_DEADLINE_HOURS", str(1.5 / 3600))
    chorus.integrate_after_reports = 10_000  # Chorus Pro never integrates it
    await run_service("tracker", receipt_windows={"chorus_pro": {"hours": 2 / 3600, "proof": "made_available"}},
                      sweep_tick_seconds=0.3)
    channels = await start_channels()
    invoice_id, number = await ingest.post(kind="cii")
    request = partner_dispatch(invoice_id, number, channel="chorus_pro")
    await channels.publish(request)
    await outcomes(channels)

    async def given_up():
        row = await submission(channels.host, request.dispatch_id)
        return row if row is not None and row.state == FAILED else None

    row = await eventually(given_up, what="follow-up given up", timeout=60)
    assert row.last_status == "IN_DEPOSE" and row.next_check_at is None
    assert [type(e) for e in await channels.outcomes()] == [InvoiceDispatched]
    assert await acks_of(channels, invoice_id) == []

    async def not_received():  # no proof within the (shortened) receipt window
        return [e for e in await channels.read(topics.INCIDENT_EVENTS)
                if isinstance(e, IncidentOpened) and e.invoice_id == invoice_id and e.kind == "not_received"]

    [incident] = await eventually(not_received, what="the tracker's not_received incident", timeout=60)
    assert incident.channel == "chorus_pro"


async def test_an_invoice_sent_as_data_is_deposited_as_the_factur_x_ingest_prepares(
        outcomes, ingest, chorus, start_channels, partner_dispatch, eventually):
    channels = await start_channels()
    invoice_id, number = await ingest.post(kind="json")
    await channels.publish(partner_dispatch(invoice_id, number, channel="chorus_pro"))
    [dispatched] = await outcomes(channels)
    assert isinstance(dispatched, InvoiceDispatched), dispatched
    [flux] = chorus.deposits_of(number)  # the simulator read the number from the PDF's embedded CII
    assert flux.syntax == "IN_DP_E2_CII_FACTURX" and flux.file_name.endswith(".pdf")
    await eventually(lambda: _has(channels, invoice_id, "DEPOSEE"), what="integrated", timeout=60)


async def test_what_chorus_pro_would_refuse_fails_clearly_before_depositing(
        outcomes, ingest, chorus, start_channels, partner_dispatch):
    kind, reason = "cii", "the buyer's structure requires a service code (BT-10 buyer reference)"
    chorus.add_structure("55210055400013", "Ville de Test", service_required=True)
    channels = await start_channels()
    invoice_id, number = await ingest.post(kind=kind)
    await channels.publish(partner_dispatch(invoice_id, number, channel="chorus_pro"))

    [failure] = await outcomes(channels)
    assert isinstance(failure, DispatchFailed) and failure.permanent and failure.fallback_channels == ["email_link"]
    assert reason in failure.reason
    assert chorus.deposits == 0


def test_chorus_limits_are_enforced_before_sending():
    assert limit_violations([FileToDeposit("facture.pdf", 1000), FileToDeposit("annexe.xlsx", 2000)]) == []
    problems = limit_violations([
        FileToDeposit("x" * 47 + ".pdf", 10), FileToDeposit("script.exe", 10),
        FileToDeposit("scan.pdf", 10 * 1024 * 1024 + 1),
        *[FileToDeposit(f"annexe-{i}.pdf", 10 * 1024 * 1024) for i in range(12)],
    ])
    assert any("longer than 50" in p for p in problems)
    assert any("'exe' is not accepted" in p for p in problems)
    assert any("over Chorus Pro's 10485760 per file" in p for p in problems)
    assert any("over Chorus Pro's 125829120" in p for p in problems)
    name = deposit_file_name("F/2026/" + "9" * 60, uuid.uuid4(), "xml")
    assert len(name) <= 50 and name.endswith(".xml") and "/" not in name


async def test_a_crash_between_deposit_and_record_deposits_once(
        ingest, chorus, partner_dispatch, publish, crash_and_restart, submission_in):
    invoice_id, number = await ingest.post(kind="cii")
    request = partner_dispatch(invoice_id, number, channel="chorus_pro")
    chorus.hold_next_deposit(5)  # accepted at once, answered after the kill

    async def recorded(database_url):
        state = await submission_in(database_url, request.dispatch_id)
        return state if state is not None and state[0] != "sending" else None

    state, attempts = await crash_and_restart(lambda: publish(request), lambda: _deposited(chorus), recorded)
    assert chorus.deposits == 1 and len(chorus.deposits_of(number)) == 1
    assert attempts == 2 and state in ("submitted", "acknowledged")  # the second attempt found it at Chorus Pro


async def _deposited(chorus) -> bool:
    return chorus.deposits == 1



async def test_each_tenant_deposits_with_its_own_technical_account(
        outcomes, ingest, chorus, start_channels, partner_dispatch, monkeypatch):
    chorus.add_account("TECH_GLOBEX@cpp2017.fr", "globex-password")
    monkeypatch.setenv("PARCOURS_CHANNELS_CHORUS_PRO_ACCOUNTS", json.dumps(
        {"globex": {"login": "TECH_GLOBEX@cpp2017.fr", "password": "globex-password"}}))
    channels = await start_channels()
    acme_invoice = await ingest.post(kind="cii")
    globex_invoice = await ingest.post(kind="cii", tenant="globex")
    await channels.publish(partner_dispatch(*acme_invoice, channel="chorus_pro"),
                           partner_dispatch(*globex_invoice, channel="chorus_pro", tenant_id="globex"))

    assert {type(e) for e in await outcomes(channels, 2)} == {InvoiceDispatched}
    [acme_flux], [globex_flux] = chorus.deposits_of(acme_invoice[1]), chorus.deposits_of(globex_invoice[1])
    assert (acme_flux.account, globex_flux.account) == (chorus.login, "TECH_GLOBEX@cpp2017.fr")


async def test_batched_invoices_go_in_one_tar_gz_deposit_and_are_followed_each(
        outcomes, ingest, chorus, start_channels, partner_dispatch, eventually, monkeypatch):
    monkeypatch.setenv("PARCOURS_CHANNELS_CHORUS_PRO_BATCH_MAX", "3")  # deposited once three are queued
    monkeypatch.setenv("PARCOURS_CHANNELS_CHORUS_PRO_BATCH_WAIT_SECONDS", "600")
    channels = await start_channels()
    invoices = [await ingest.post(kind="cii") for _ in range(3)]
    await channels.publish(*(partner_dispatch(*invoice, channel="chorus_pro") for invoice in invoices))

    assert {type(e) for e in await outcomes(channels, 3)} == {InvoiceDispatched}

    async def all_made_available():
        return all([await _has(channels, invoice_id, "MISE_A_DISPOSITION") for invoice_id, _ in invoices])

    await eventually(all_made_available, what="each invoice of the batch followed", timeout=60)
    [flux] = chorus.flux.values()
    assert chorus.deposits == 1 and flux.file_name.endswith(".tar.gz") and flux.syntax == "IN_DP_E1_CII_16B"
    assert sorted(flux.invoice_numbers) == sorted(number for _, number in invoices)


async def test_a_crash_during_a_batch_deposit_adopts_the_flux_without_depositing_again(
        ingest, chorus, partner_dispatch, publish, crash_and_restart, monkeypatch):
    monkeypatch.setenv("PARCOURS_CHANNELS_CHORUS_PRO_BATCH_MAX", "3")
    monkeypatch.setenv("PARCOURS_CHANNELS_CHORUS_PRO_BATCH_WAIT_SECONDS", "600")
    monkeypatch.setenv("PARCOURS_CHANNELS_CHORUS_PRO_TIMEOUT_SECONDS", "1")  # a batch's lease: 4 s
    invoices = [await ingest.post(kind="cii") for _ in range(3)]
    requests = [partner_dispatch(*invoice, channel="chorus_pro") for invoice in invoices]
    chorus.hold_next_deposit(5)  # the tar.gz is accepted at once, answered after the kill

    async def adopted(database_url):
        rows = await _batch_rows(database_url, [r.dispatch_id for r in requests])
        return rows if all(stage in ("report", "history") for _, stage in rows) else None  # past the batch

    rows = await crash_and_restart(lambda: publish(*requests), lambda: _deposited(chorus), adopted)
    [flux] = chorus.flux.values()
    assert chorus.deposits == 1 and flux.file_name.endswith(".tar.gz")
    assert sorted(flux.invoice_numbers) == sorted(number for _, number in invoices)
    assert [ref for ref, _ in rows] == [flux.number] * 3  # each invoice found in the flux that holds it


async def _batch_rows(database_url: str, dispatch_ids: list[uuid.UUID]) -> list[tuple[str | None, str | None]]:
    """(partner reference, stage) of each dispatch's submission, read from the channels database."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from parcours_channels.store.partner_submissions import PartnerSubmission

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            found = {row.dispatch_id: (row.partner_ref, (row.detail or {}).get("stage")) for row in await conn.execute(
                select(PartnerSubmission.dispatch_id, PartnerSubmission.partner_ref, PartnerSubmission.detail)
                .where(PartnerSubmission.dispatch_id.in_(dispatch_ids)))}
    finally:
        await engine.dispose()
    return [found.get(dispatch_id, (None, None)) for dispatch_id in dispatch_ids]

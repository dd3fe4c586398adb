"""Several invoices in one Chorus Pro deposit: a tar.gz of their documents (same syntax, same
supplier account), made by the follow-up pass from the submissions queued since the last one.

Send-once holds for the batch too: the rows are marked `batch_depositing` (with the archive's
name) before the deposit and given the flux number right after; a pass that finds rows still
`batch_depositing` (a crash in between) asks Chorus Pro for each invoice and adopts the flux
that holds it, or queues it again."""

from __future__ import annotations

import io
import logging
import tarfile
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from parcours_channels.adapters import TransientDeliveryError
from parcours_channels.adapters.chorus_pro.client import ChorusProClient, ChorusProError
from parcours_channels.adapters.chorus_pro.deposit_file import deposit_file
from parcours_channels.adapters.documents import DocumentSettings
from parcours_channels.adapters.partner_once import PartnerRefused
from parcours_channels.domain.chorus_pro import MAX_ARCHIVE_BYTES
from parcours_channels.store.partner_submissions import REJECTED, SUBMITTED, PartnerSubmission, record_outcome
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

log = logging.getLogger(__name__)
QUEUED, DEPOSITING = "batch", "batch_depositing"


def is_batched(row: PartnerSubmission) -> bool:
    return (row.detail or {}).get("stage") in (QUEUED, DEPOSITING)


class BatchDeposits:
    def __init__(self, ctx: ServiceContext, client: ChorusProClient, *, lease: timedelta) -> None:
        self.ctx = ctx
        self.client = client
        self.lease = lease
        self.first_check = timedelta(seconds=client.settings.first_check_seconds)

    async def run(self, rows: list[PartnerSubmission], now: datetime, failed_event) -> None:
        """Recover interrupted batches, then deposit what is queued, by (tenant, syntax), `batch_max` at a time."""
        for row in (r for r in rows if r.detail.get("stage") == DEPOSITING):
            await self._recover(row, now)
        groups: dict[tuple[str, str], list[PartnerSubmission]] = defaultdict(list)
        for row in (r for r in rows if r.detail.get("stage") == QUEUED):
            groups[(row.tenant_id, row.detail["syntax"])].append(row)
        size, wait = self.client.settings.batch_max, timedelta(seconds=self.client.settings.batch_wait_seconds)
        for (tenant_id, syntax), group in groups.items():
            group.sort(key=lambda row: row.detail["queued_at"])
            for start in range(0, len(group), size):
                batch = group[start:start + size]
                if len(batch) == size or now - datetime.fromisoformat(batch[0].detail["queued_at"]) >= wait:
                    await self._deposit(tenant_id, syntax, batch, now, failed_event)
                else:  # not full and not old enough: due again at the next pass
                    await self._record(batch, stage=QUEUED, next_check_at=now, status="QUEUED")

    async def _deposit(self, tenant_id: str, syntax: str, rows: list[PartnerSubmission], now: datetime,
                       failed_event) -> None:
        account = self.client.settings.account_for(tenant_id)
        try:
            if account is None:
                raise TransientDeliveryError(f"tenant {tenant_id} has no Chorus Pro technical account any more")
            archive = await self._archive(tenant_id, rows)
        except (TransientDeliveryError, PartnerRefused) as exc:
            log.warning("chorus_pro batch of %d for %s not deposited: %s", len(rows), tenant_id, exc)
            return await self._record(rows, stage=QUEUED, next_check_at=now + self.first_check, status="QUEUED")
        name = f"PRC_LOT_{uuid.uuid4().hex[:16]}.tar.gz"
        # A crash from here on: the lease ends, and the next pass recovers these rows.
        await self._record(rows, stage=DEPOSITING, next_check_at=now + self.lease, status="DEPOSITING", batch_file=name)
        try:
            deposit = await self.client.deposit(account, file_name=name, content=archive, syntax=syntax)
        except ChorusProError as refused:
            async with UnitOfWork(self.ctx.sessions) as uow:
                for row in rows:
                    uow.publish(failed_event(row, f"Chorus Pro refused the deposit {name}: {refused}"))
                    await record_outcome(uow.session, dispatch_id=row.dispatch_id, state=REJECTED,
                                         last_status="DEPOSIT_REFUSED", detail={**row.detail, "reason": str(refused)})
                await uow.commit()
            return
        except TransientDeliveryError as exc:  # accepted or not: the next pass looks the invoices up
            log.warning("chorus_pro batch %s: %s; looked up at the next pass", name, exc)
            return await self._record(rows, stage=DEPOSITING, next_check_at=now, status="DEPOSITING", batch_file=name)
        flux = deposit.numeroFluxDepot or name
        await self._record(rows, stage="report", next_check_at=now + self.first_check, status="IN_DEPOSE",
                           partner_ref=flux, batch_file=name)

    async def _archive(self, tenant_id: str, rows: list[PartnerSubmission]) -> bytes:
        buffer = io.BytesIO()
        settings = DocumentSettings.of(self.ctx.settings)
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for row in rows:
                document = await deposit_file(self.client.http, settings, tenant_id=tenant_id, invoice_id=row.invoice_id,
                                              has_pdf=bool(row.detail.get("has_pdf")), number=row.detail["number"],
                                              dispatch_id=row.dispatch_id)
                member = tarfile.TarInfo(name=row.detail["file_name"])
                member.size = len(document.content)
                tar.addfile(member, io.BytesIO(document.content))
        if buffer.tell() > MAX_ARCHIVE_BYTES:
            raise PartnerRefused(f"the batch is {buffer.tell()} bytes compressed, over Chorus Pro's {MAX_ARCHIVE_BYTES}")
        return buffer.getvalue()

    async def _recover(self, row: PartnerSubmission, now: datetime) -> None:
        """A batch deposit whose answer we never recorded: adopt the flux holding the invoice, or queue it again."""
        account = self.client.settings.account_for(row.tenant_id)
        found = await self.client.find_invoice(account, number=row.detail["number"]) if account else None
        if found is None:
            return await self._record([row], stage=QUEUED, next_check_at=now, status="QUEUED")
        await self._record([row], stage="report", next_check_at=now + self.first_check, status=found.statut,
                           partner_ref=found.numeroFluxDepot or f"facture-{found.idFacture}", invoice_id=found.idFacture)

    async def _record(self, rows: list[PartnerSubmission], *, stage: str, next_check_at: datetime | None, status: str | None,
                      partner_ref: str | None = None, **detail) -> None:
        async with UnitOfWork(self.ctx.sessions) as uow:
            for row in rows:
                row.detail = {**row.detail, "stage": stage, **detail}
                await record_outcome(uow.session, dispatch_id=row.dispatch_id, state=SUBMITTED, last_status=status,
                                     partner_ref=partner_ref, next_check_at=next_check_at, detail=row.detail)
            await uow.commit()


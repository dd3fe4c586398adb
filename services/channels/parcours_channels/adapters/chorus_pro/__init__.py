"""`chorus_pro`: deposit the invoice's structured document on Chorus Pro (PISTE API) and follow
it until Chorus Pro's last word, reporting each step as `delivery.acked` with its 2026 status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from parcours_channels.adapters.chorus_pro.client import ChorusProClient, ChorusProError
from parcours_channels.adapters.chorus_pro.config import ChorusProSettings
from parcours_channels.adapters.chorus_pro.deposit_file import deposit_file
from parcours_channels.adapters.documents import DocumentSettings
from parcours_channels.adapters.partner_once import Accepted, PartnerRefused, submit_once
from parcours_channels.domain.chorus_pro import ChorusProAccount, RoutingData, routing_data, routing_problems
from parcours_channels.domain.outcome import DeliveryResult
from parcours_channels.store.partner_submissions import PartnerSubmission
from parcours_contracts import DispatchRequested
from parcours_runtime.service import ServiceContext

CHANNEL = "chorus_pro"


class ChorusProAdapter:
    name = CHANNEL

    def __init__(self) -> None:
        self._client: ChorusProClient | None = None

    def client(self, ctx: ServiceContext) -> ChorusProClient:
        """The Chorus Pro client over the process's HTTP client, made on first use (settings are read then)."""
        if self._client is None:
            self._client = ChorusProClient(ctx.http, ChorusProSettings.of(ctx.settings))
        return self._client

    async def deliver(self, request: DispatchRequested, ctx: ServiceContext) -> DeliveryResult:
        """Deposit once; the follow-up job reports integration and processing."""
        client = self.client(ctx)
        first_check = timedelta(seconds=client.settings.first_check_seconds)
        common = {"number": request.invoice.number, "fallback_channels": list(request.fallback_channels)}

        account = client.settings.account_for(request.tenant_id)

        async def submit(row: PartnerSubmission) -> Accepted:
            if not client.settings.configured:
                raise PartnerRefused("Chorus Pro is not configured (PISTE client)")
            if account is None:
                raise PartnerRefused(f"tenant {request.tenant_id} has no Chorus Pro technical account")
            document = await deposit_file(client.http, DocumentSettings.of(ctx.settings), tenant_id=request.tenant_id,
                                          invoice_id=request.invoice_id, has_pdf=request.invoice.has_pdf,
                                          number=request.invoice.number, dispatch_id=request.dispatch_id)
            file_name, syntax = document.name, document.syntax
            if problems := await self._routing_problems(client, account, routing_data(document.xml, ubl=document.ubl)):
                raise PartnerRefused("; ".join(problems))
            sent = {**common, "syntax": syntax, "file_name": file_name, "attachments": list(document.attachments)}
            if client.settings.batch_max > 1:  # the follow-up's next pass deposits it with others
                return Accepted(partner_ref=file_name, last_status="QUEUED", next_check_at=datetime.now(timezone.utc),
                                detail={**sent, "stage": "batch", "has_pdf": request.invoice.has_pdf,
                                        "queued_at": datetime.now(timezone.utc).isoformat()})
            try:
                deposit = await client.deposit(account, file_name=file_name, content=document.content, syntax=syntax)
            except ChorusProError as refused:
                raise PartnerRefused(f"deposit refused: {refused}") from None
            if not deposit.numeroFluxDepot:
                raise PartnerRefused(f"deposit answered without a numeroFluxDepot: {deposit.libelle}")
            return Accepted(partner_ref=deposit.numeroFluxDepot, last_status="IN_DEPOSE",
                            next_check_at=datetime.now(timezone.utc) + first_check,
                            detail={**sent, "stage": "report"})

        async def find_earlier(row: PartnerSubmission) -> Accepted | None:
            if account is None:
                return None
            found = await client.find_invoice(account, number=request.invoice.number)
            if found is None:
                return None
            return Accepted(partner_ref=found.numeroFluxDepot or f"facture-{found.idFacture}", last_status=found.statut,
                            next_check_at=datetime.now(timezone.utc) + first_check,
                            detail={**common, "stage": "report", "syntax": None, "invoice_id": found.idFacture})

        return await submit_once(request, ctx, partner=CHANNEL, submit=submit, find_earlier=find_earlier)

    @staticmethod
    async def _routing_problems(client: ChorusProClient, account: ChorusProAccount, routing: RoutingData) -> list[str]:
        """Whether Chorus Pro can route the invoice: the buyer's structure exists and gets what it requires."""
        if not routing.buyer_siret:
            return ["the buyer's SIRET (scheme 0009) is missing: Chorus Pro routes public invoices on it"]
        try:
            structure = await client.structure(account, siret=routing.buyer_siret)
        except ChorusProError as refused:
            return [f"the buyer's structure {routing.buyer_siret} could not be read: {refused}"]
        if structure is None:
            return [f"no Chorus Pro structure has the buyer's SIRET {routing.buyer_siret}"]
        parameters = structure.parametres
        return routing_problems(routing, service_required=parameters.codeServiceDoitEtreRenseigne,
                                engagement_required=parameters.numeroEJDoitEtreRenseigne,
                                one_of_both=parameters.gestionNumeroEJOuCodeService)

    def background_jobs(self, ctx: ServiceContext) -> list:
        from parcours_channels.adapters.chorus_pro.follow_up import ChorusProFollowUp

        return [ChorusProFollowUp(ctx, self)]

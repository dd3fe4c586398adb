"""The PISTE / Chorus Pro API, as Parcours uses it: OAuth2 client credentials, the `cpro-account`
header, and four routes. Answers are validated; transport trouble is transient, a business
refusal (non-zero `codeRetour`) is the partner's word."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parcours_channels.adapters import PartnerUnavailable
from parcours_channels.adapters.chorus_pro.config import ChorusProSettings
from parcours_channels.adapters.oauth import ClientCredentials
from parcours_channels.domain.chorus_pro import ChorusProAccount


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    codeRetour: int
    libelle: str = ""


class Deposit(_Answer):
    numeroFluxDepot: str | None = Field(default=None, max_length=200)


class Report(_Answer):
    etatCourantDepotFlux: str | None = Field(default=None, max_length=64)
    listeErreurDP: list[dict[str, Any]] = Field(default_factory=list)
    listeErreurTechnique: list[dict[str, Any]] = Field(default_factory=list)


class FoundInvoice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    idFacture: int
    numeroFacture: str
    numeroFluxDepot: str | None = None
    statut: str | None = Field(default=None, max_length=64)


class Search(_Answer):
    listeFactures: list[FoundInvoice] = Field(default_factory=list)


class FoundStructure(BaseModel):
    model_config = ConfigDict(extra="ignore")

    idStructureCPP: int
    designationStructure: str | None = None


class Structures(_Answer):
    listeStructures: list[FoundStructure] = Field(default_factory=list)


class StructureParameters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    codeServiceDoitEtreRenseigne: bool = False
    numeroEJDoitEtreRenseigne: bool = False
    gestionNumeroEJOuCodeService: bool = False


class Structure(_Answer):
    raisonSociale: str | None = None
    parametres: StructureParameters = Field(default_factory=StructureParameters)


class History(_Answer):
    idFacture: int | None = None
    statutCourantCode: str | None = Field(default=None, max_length=64)


A = TypeVar("A", bound=_Answer)


class ChorusProError(Exception):
    """Chorus Pro answered, and said no (codeRetour ≠ 0)."""


class ChorusProClient:
    def __init__(self, http: httpx.AsyncClient, settings: ChorusProSettings) -> None:
        self.http = http
        self.settings = settings
        self._credentials = ClientCredentials(http, token_url=settings.oauth_url, client_id=settings.client_id,
                                              client_secret=settings.client_secret.get_secret_value(), scope="openid",
                                              timeout=settings.timeout_seconds)

    async def deposit(self, account: ChorusProAccount, *, file_name: str, content: bytes, syntax: str) -> Deposit:
        body = {"fichierFlux": base64.b64encode(content).decode(), "nomFichier": file_name, "syntaxeFlux": syntax,
                "avecSignature": False}
        return await self._call(account, "/cpro/factures/v1/deposer/flux", body, Deposit)

    async def report(self, account: ChorusProAccount, *, flux: str, syntax: str) -> Report:
        return await self._call(account, "/cpro/transverses/v1/consulterCRDetaille",
                                {"numeroFluxDepot": flux, "syntaxeFlux": syntax}, Report)

    async def find_invoice(self, account: ChorusProAccount, *, number: str) -> FoundInvoice | None:
        body = {"numeroFacture": number, "pageResultatDemandee": 1, "nbResultatsParPage": 10}
        found = await self._call(account, "/cpro/factures/v1/rechercher/fournisseur", body, Search, refused_is_error=False)
        return next((invoice for invoice in found.listeFactures if invoice.numeroFacture == number), None)

    async def structure(self, account: ChorusProAccount, *, siret: str) -> Structure | None:
        """The public structure with this SIRET and its parameters (what its invoices must carry)."""
        query = {"structure": {"identifiantStructure": siret, "typeIdentifiantStructure": "SIRET"}}
        found = await self._call(account, "/cpro/structures/v1/rechercher", query, Structures, refused_is_error=False)
        if not found.listeStructures:
            return None
        return await self._call(account, "/cpro/structures/v1/consulter",
                                {"idStructureCPP": found.listeStructures[0].idStructureCPP, "codeLangue": "fr"}, Structure)

    async def history(self, account: ChorusProAccount, *, invoice_id: int) -> History:
        return await self._call(account, "/cpro/factures/v1/consulter/historique", {"idFacture": invoice_id}, History)

    async def _call(self, account: ChorusProAccount, path: str, body: dict, model: type[A], *,
                    refused_is_error: bool = True) -> A:
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {await self._credentials.bearer(renew=attempt == 2)}",
                       "cpro-account": _cpro_account(account), "Content-Type": "application/json;charset=utf-8"}
            try:
                response = await self.http.post(f"{self.settings.api_url.rstrip('/')}{path}", json=body, headers=headers,
                                                 timeout=self.settings.timeout_seconds)
            except httpx.HTTPError as exc:
                raise PartnerUnavailable(f"Chorus Pro unreachable: {type(exc).__name__}") from None
            if response.status_code == 401 and attempt == 1:
                continue  # the token expired early: one more try with a new one
            break
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            raise PartnerUnavailable(f"Chorus Pro answered {response.status_code} on {path}")
        try:
            answer = model.model_validate_json(response.content)
        except ValidationError:
            raise PartnerUnavailable(f"Chorus Pro's answer on {path} is not what its API describes "
                                         f"(HTTP {response.status_code})") from None
        if answer.codeRetour != 0 and refused_is_error:
            raise ChorusProError(f"{answer.codeRetour} {answer.libelle}".strip())
        return answer


def _cpro_account(account: ChorusProAccount) -> str:
    return base64.b64encode(f"{account.login}:{account.password.get_secret_value()}".encode()).decode()

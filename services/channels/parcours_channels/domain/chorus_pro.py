"""Chorus Pro rules: deposit limits, file names, syntaxes, and what its statuses mean. No IO.

A deposit (`deposerFlux`) is followed in two steps: the flux's integration report
(`consulterCRDetaille`: IN_DEPOSE … IN_INTEGRE / IN_REJETE / IN_INCIDENTE), then, once the
invoice exists, its processing history (`consulter/historique`: DEPOSEE … MISE_EN_PAIEMENT).
Each status is mapped to the 2026 lifecycle; polling backs off and stops at terminal states."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from pydantic import BaseModel, ConfigDict, SecretStr

from parcours_contracts import LifecycleStatus as L

MAX_NAME_CHARS = 50
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_INVOICE_BYTES = 120 * 1024 * 1024
MAX_ARCHIVE_BYTES = 30 * 1024 * 1024  # a tar.gz of several invoices, compressed
EXTENSIONS = frozenset({"pdf", "xml", "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "svg", "txt", "csv", "rtf",
                        "doc", "docx", "xls", "xlsx", "odt", "ods", "odp", "ppt", "pptx", "pps", "ppsx", "zip", "gz",
                        "tgz", "7z", "rar", "xht", "xhtml", "htm", "html", "fax"})

SYNTAXES = {"facturx": "IN_DP_E2_CII_FACTURX", "cii": "IN_DP_E1_CII_16B", "ubl": "IN_DP_E1_UBL_INVOICE"}

# consulterCRDetaille: the flux's integration.
CR_INTEGRATED = frozenset({"IN_INTEGRE", "IN_INTEGRE_PARTIEL"})
CR_REFUSED = frozenset({"IN_REJETE", "IN_INCIDENTE"})

# consulter/historique: the invoice's processing, as 2026 lifecycle statuses (None: no news).
HISTORY: dict[str, L | None] = {
    "DEPOSEE": L.DEPOSEE, "EN_COURS_ACHEMINEMENT": None, "MISE_A_DISPOSITION": L.MISE_A_DISPOSITION,
    "A_RECYCLER": L.REJETEE, "REJETEE": L.REJETEE, "SUSPENDUE": L.SUSPENDUE, "COMPLETEE": L.COMPLETEE,
    "MISE_A_DISPOSITION_COMPTABLE": L.PRISE_EN_CHARGE, "COMPTABILISEE": L.PRISE_EN_CHARGE,
    "SERVICE_FAIT": L.APPROUVEE, "MANDATEE": L.PAIEMENT_TRANSMIS, "MISE_EN_PAIEMENT": L.PAIEMENT_TRANSMIS,
}
HISTORY_TERMINAL = frozenset({"REJETEE", "A_RECYCLER", "MISE_EN_PAIEMENT"})


class ChorusProAccount(BaseModel):
    """A supplier's Chorus Pro technical account (sent as `cpro-account`): each tenant deposits
    as itself; the PISTE application (OAuth2 client) is Parcours' own, shared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    login: str
    password: SecretStr


@dataclass(frozen=True)
class FileToDeposit:
    name: str
    size: int


def limit_violations(files: list[FileToDeposit]) -> list[str]:
    """Why Chorus Pro would refuse these files (names ≤ 50 characters, known extensions,
    10 MB a file, 120 MB an invoice); empty when it would take them."""
    problems = []
    for file in files:
        if len(file.name) > MAX_NAME_CHARS:
            problems.append(f"file name {file.name[:60]!r} is longer than {MAX_NAME_CHARS} characters")
        extension = file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""
        if extension not in EXTENSIONS:
            problems.append(f"file {file.name[:60]!r}: extension {extension or '(none)'!r} is not accepted by Chorus Pro")
        if file.size > MAX_FILE_BYTES:
            problems.append(f"file {file.name[:60]!r} is {file.size} bytes, over Chorus Pro's {MAX_FILE_BYTES} per file")
    total = sum(file.size for file in files)
    if total > MAX_INVOICE_BYTES:
        problems.append(f"the invoice's files total {total} bytes, over Chorus Pro's {MAX_INVOICE_BYTES}")
    return problems


def deposit_file_name(number: str, dispatch_id: UUID, extension: str) -> str:
    """A name unique per dispatch, within Chorus Pro's 50 characters: PRC_<number>_<dispatch>.<ext>."""
    safe = re.sub(r"[^A-Za-z0-9-]", "-", number)[:30]
    return f"PRC_{safe}_{dispatch_id.hex[:8]}.{extension}"


@dataclass(frozen=True)
class Backoff:
    """Poll soon after a deposit, then less and less often, and give up after `give_up_after`."""

    first: timedelta = timedelta(minutes=1)
    longest: timedelta = timedelta(hours=6)
    give_up_after: timedelta = timedelta(days=60)

    def next_check(self, now: datetime, checks: int) -> datetime:
        return now + min(self.first * (2 ** min(checks, 20)), self.longest)

    def expired(self, now: datetime, since: datetime) -> bool:
        return now - since > self.give_up_after


@dataclass(frozen=True)
class RoutingData:
    """What Chorus Pro routes a B2G invoice on: the buyer's SIRET (its structure), the service
    code (BT-10 buyer reference) and the engagement number (BT-13 purchase order)."""

    buyer_siret: str | None
    service_code: str | None
    engagement: str | None


_CII_ROUTING = {
    "buyer_siret": ("//ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0009']",
                    "//ram:BuyerTradeParty/ram:GlobalID[@schemeID='0009']"),
    "service_code": ("//ram:ApplicableHeaderTradeAgreement/ram:BuyerReference",),
    "engagement": ("//ram:ApplicableHeaderTradeAgreement/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID",),
}
_UBL_ROUTING = {
    "buyer_siret": ("//cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID[@schemeID='0009']",
                    "//cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID[@schemeID='0009']"),
    "service_code": ("/*/cbc:BuyerReference",),
    "engagement": ("/*/cac:OrderReference/cbc:ID",),
}
_NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}


def routing_data(root, *, ubl: bool) -> RoutingData:
    """The routing data an (already parsed) CII or UBL document carries."""
    def first(paths: tuple[str, ...]) -> str | None:
        for path in paths:
            found = root.xpath(path, namespaces=_NS)
            if found and (found[0].text or "").strip():
                return found[0].text.strip()
        return None

    table = _UBL_ROUTING if ubl else _CII_ROUTING
    return RoutingData(**{name: first(paths) for name, paths in table.items()})


def routing_problems(routing: RoutingData, *, service_required: bool, engagement_required: bool,
                     one_of_both: bool = False) -> list[str]:
    """Why the buyer's structure would refuse this invoice (its Chorus Pro parameters)."""
    problems = []
    if service_required and not routing.service_code:
        problems.append("the buyer's structure requires a service code (BT-10 buyer reference), the invoice has none")
    if engagement_required and not routing.engagement:
        problems.append("the buyer's structure requires an engagement number (BT-13 purchase order), the invoice has none")
    if one_of_both and not (routing.service_code or routing.engagement):
        problems.append("the buyer's structure requires a service code or an engagement number, the invoice has neither")
    return problems

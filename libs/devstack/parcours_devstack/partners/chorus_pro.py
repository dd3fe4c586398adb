"""A Chorus Pro simulator following the PISTE API Parcours uses.

`POST /api/oauth/token` (client credentials), then with `Authorization: Bearer` and
`cpro-account: base64(login:password)`:
`/cpro/factures/v1/deposer/flux`, `/cpro/transverses/v1/consulterCRDetaille`,
`/cpro/factures/v1/rechercher/fournisseur`, `/cpro/factures/v1/consulter/historique`.
Business answers carry `codeRetour` (0 = done) and `libelle`. Deposits are checked like Chorus
Pro does (syntax, base64, file name, size, the document matching its syntax, the attachments it
carries: names ≤ 50 characters, known extensions, 10 MB each) and counted;
tests steer it: `fail_next` (HTTP errors), `reject_next` / `incident_next` (the flux's report),
`hold_next_deposit` (accept, then answer late), `advance` (the invoice's processing)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import secrets
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from lxml import etree

SYNTAXES = {"IN_DP_E1_CII_16B", "IN_DP_E1_UBL_INVOICE", "IN_DP_E2_CII_FACTURX", "IN_DP_E2_UBL_INVOICE_MIN",
            "IN_DP_E2_CPP_FACTURE_MIN", "IN_DP_E2_PDF"}
MAX_FILE_BYTES = 10 * 1024 * 1024  # an invoice document, an attachment
MAX_FLUX_BYTES = 120 * 1024 * 1024  # a deposited file, with the attachments it carries
ATTACHMENT_EXTENSIONS = {"pdf", "xml", "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "svg", "txt", "csv", "rtf",
                         "doc", "docx", "xls", "xlsx", "odt", "ods", "odp", "ppt", "pptx", "pps", "ppsx", "zip", "gz",
                         "tgz", "7z", "rar", "xht", "xhtml", "htm", "html", "fax"}
_ATTACHMENT_PATHS = ("//*[local-name()='AttachmentBinaryObject']", "//*[local-name()='EmbeddedDocumentBinaryObject']")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
_NUMBER_PATHS = ("/*[local-name()='CrossIndustryInvoice']/*[local-name()='ExchangedDocument']/*[local-name()='ID']",
                 "/*[local-name()='Invoice' or local-name()='CreditNote']/*[local-name()='ID']")


@dataclass
class Flux:
    number: str  # numeroFluxDepot
    file_name: str
    syntax: str
    invoice_numbers: list[str]  # one, or those of a tar.gz's documents
    deposited_at: datetime
    account: str  # the technical account's login
    report: str = "IN_DEPOSE"
    errors: list[dict] = field(default_factory=list)
    attachments: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, content) besides the invoices


@dataclass
class Invoice:
    id: int
    number: str
    flux: str
    account: str
    history: list[str] = field(default_factory=list)


def _answer(code: int, message: str, status: int = 200, **fields) -> JSONResponse:
    return JSONResponse({"codeRetour": code, "libelle": message, **fields}, status_code=status)


class ChorusProSimulator:
    def __init__(self, *, client_id: str = "parcours-piste", client_secret: str = "piste-secret",
                 login: str = "TECH_PARCOURS@cpp2017.fr", password: str = "technical-password",
                 integrate_after_reports: int = 0) -> None:
        self.client_id, self.client_secret, self.login, self.password = client_id, client_secret, login, password
        self.accounts = {login: password}  # technical accounts: login → password
        self.integrate_after_reports = integrate_after_reports  # IN_DEPOSE answered this many times first
        self.tokens: set[str] = set()
        self.flux: dict[str, Flux] = {}
        self.invoices: dict[int, Invoice] = {}
        self.deposits = 0  # deposits accepted
        self.calls: list[str] = []
        self._failures: list[int] = []
        self._planned_reports: list[tuple[str, str]] = []
        self._hold_seconds = 0.0
        self._reports_seen: dict[str, int] = {}
        self.structures: dict[str, dict] = {}  # SIRET → the public structure's identity and parameters

    # Steering, for tests.
    def add_account(self, login: str, password: str) -> None:
        """Another supplier's technical account."""
        self.accounts[login] = password

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        self._failures.extend([status] * n)

    def reject_next(self, reason: str = "Le SIRET du destinataire est inconnu") -> None:
        self._planned_reports.append(("IN_REJETE", reason))

    def incident_next(self, reason: str = "Incident technique lors de l'intégration") -> None:
        self._planned_reports.append(("IN_INCIDENTE", reason))

    def hold_next_deposit(self, seconds: float) -> None:
        """Accept the next deposit, then wait before answering (a client may die meanwhile)."""
        self._hold_seconds = seconds

    def add_structure(self, siret: str, name: str = "Structure publique", *, service_required: bool = False,
                      engagement_required: bool = False) -> None:
        """A public buyer (structure) known by Chorus Pro, and what its invoices must carry."""
        self.structures[siret] = {"idStructureCPP": 25000 + len(self.structures), "designationStructure": name,
                                  "parametres": {"codeServiceDoitEtreRenseigne": service_required,
                                                 "numeroEJDoitEtreRenseigne": engagement_required,
                                                 "gestionNumeroEJOuCodeService": False}}

    def advance(self, invoice_number: str, status: str) -> None:
        """The buyer's side moved the invoice on (MISE_A_DISPOSITION, SERVICE_FAIT, MISE_EN_PAIEMENT, REJETEE…)."""
        for invoice in self.invoices.values():
            if invoice.number == invoice_number:
                invoice.history.append(status)
                return
        raise KeyError(invoice_number)

    def deposits_of(self, invoice_number: str) -> list[Flux]:
        return [flux for flux in self.flux.values() if invoice_number in flux.invoice_numbers]

    def app(self) -> FastAPI:
        app = FastAPI(title="Chorus Pro simulator (PISTE)")

        @app.middleware("http")
        async def planned_failures(request: Request, call_next):
            self.calls.append(request.url.path)
            if self._failures and request.url.path.startswith("/cpro/"):
                return JSONResponse({"message": "Service Unavailable"}, status_code=self._failures.pop(0))
            return await call_next(request)

        @app.post("/api/oauth/token")
        async def token(request: Request):
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if form.get("grant_type") != "client_credentials" or (
                    form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            value = secrets.token_urlsafe(24)
            self.tokens.add(value)
            return {"access_token": value, "token_type": "Bearer", "expires_in": 3600, "scope": "openid"}

        @app.post("/cpro/factures/v1/deposer/flux")
        async def deposit(request: Request):
            if isinstance(account := self._authorise(request), JSONResponse):
                return account
            body = await request.json()
            syntax, name, encoded = body.get("syntaxeFlux"), body.get("nomFichier") or "", body.get("fichierFlux") or ""
            if syntax not in SYNTAXES:
                return _answer(20003, f"Syntaxe du flux {syntax!r} inconnue", 400)
            if not name or len(name) > 50:
                return _answer(20004, "Le nom du fichier est absent ou dépasse 50 caractères", 400)
            try:
                content = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                return _answer(20005, "Le fichier n'est pas encodé en base 64", 400)
            if len(content) > MAX_FLUX_BYTES:
                return _answer(20006, "Le fichier dépasse la taille maximale de 120 Mo", 400)
            documents = _documents(name, content)
            numbers = [_invoice_number(syntax, document) for document in documents]
            if not numbers or None in numbers:
                return _answer(20007, f"Le fichier ne correspond pas à la syntaxe {syntax}", 400)
            attachments = [found for document in documents for found in _attachments(syntax, document)]
            if refusal := _attachment_refusal(attachments):
                return _answer(20008, refusal, 400)
            flux = Flux(number=f"CPP{len(self.flux) + 1:021d}", file_name=name, syntax=syntax,
                        invoice_numbers=numbers, deposited_at=datetime.now(timezone.utc), account=account,
                        attachments=attachments)
            if self._planned_reports:
                flux.report, reason = self._planned_reports.pop(0)
                flux.errors = [{"identifiantFournisseur": None, "numeroDP": n, "libelleErreurDP": reason} for n in numbers]
            elif self.integrate_after_reports == 0:
                self._integrate(flux)  # Chorus Pro integrated it before anyone asked
            self.flux[flux.number] = flux
            self.deposits += 1
            hold, self._hold_seconds = self._hold_seconds, 0.0
            if hold:
                await asyncio.sleep(hold)
            return _answer(0, "GCU_MSG_01_000", numeroFluxDepot=flux.number,
                           dateDepot=flux.deposited_at.date().isoformat(), syntaxeFlux=syntax)

        @app.post("/cpro/transverses/v1/consulterCRDetaille")
        async def report(request: Request):
            if isinstance(account := self._authorise(request), JSONResponse):
                return account
            flux = self.flux.get((await request.json()).get("numeroFluxDepot"))
            if flux is None or flux.account != account:
                return _answer(20001, "POQ_MSG_01.003 - Flux introuvable.", 400)
            seen = self._reports_seen[flux.number] = self._reports_seen.get(flux.number, 0) + 1
            if flux.report == "IN_DEPOSE" and seen > self.integrate_after_reports:
                self._integrate(flux)
            return _answer(0, "", nomFichier=flux.file_name, dateDepotFlux=flux.deposited_at.isoformat(),
                           codeInterfaceDepotFlux="FSO1100A", etatCourantDepotFlux=flux.report,
                           listeErreurDP=flux.errors, listeErreurTechnique=[])

        @app.post("/cpro/factures/v1/rechercher/fournisseur")
        async def search(request: Request):
            if isinstance(account := self._authorise(request), JSONResponse):
                return account
            number = (await request.json()).get("numeroFacture")
            found = [{"idFacture": i.id, "numeroFacture": i.number, "numeroFluxDepot": i.flux,
                      "statut": i.history[-1]} for i in self.invoices.values()
                     if i.number == number and i.account == account]
            return _answer(0, "", listeFactures=found, pagination={"nbResultatsParPage": 10, "pageCourante": 1,
                                                                      "pages": 1, "total": len(found)})

        @app.post("/cpro/factures/v1/consulter/historique")
        async def history(request: Request):
            if isinstance(account := self._authorise(request), JSONResponse):
                return account
            invoice = self.invoices.get((await request.json()).get("idFacture"))
            if invoice is None or invoice.account != account:
                return _answer(20001, "Facture introuvable", 400)
            return _answer(0, "", idFacture=invoice.id, numeroFacture=invoice.number, modeDepot="DEPOT_API",
                           statutCourantCode=invoice.history[-1],
                           historiquesDesStatuts={"histoStatut": [{"statutCode": s} for s in invoice.history]})

        @app.post("/cpro/structures/v1/rechercher")
        async def find_structure(request: Request):
            if isinstance(account := self._authorise(request), JSONResponse):
                return account
            siret = ((await request.json()).get("structure") or {}).get("identifiantStructure")
            found = self.structures.get(siret)
            listed = [{k: found[k] for k in ("idStructureCPP", "designationStructure")}] if found else []
            return _answer(0, "", listeStructures=listed)

        @app.post("/cpro/structures/v1/consulter")
        async def read_structure(request: Request):
            if isinstance(account := self._authorise(request), JSONResponse):
                return account
            wanted = (await request.json()).get("idStructureCPP")
            for siret, found in self.structures.items():
                if found["idStructureCPP"] == wanted:
                    return _answer(0, "", idStructureCPP=wanted, identifiant=siret,
                                   raisonSociale=found["designationStructure"], parametres=found["parametres"])
            return _answer(20001, "Structure introuvable", 400)

        @app.get("/simulator/state")
        async def state():
            return {"deposits": self.deposits,
                    "flux": [vars(f) | {"deposited_at": f.deposited_at.isoformat(),
                                        "attachments": [[name, len(data)] for name, data in f.attachments]}
                             for f in self.flux.values()],
                    "invoices": [vars(i) for i in self.invoices.values()]}

        return app

    def _authorise(self, request: Request) -> JSONResponse | str:
        """The technical account's login, or the refusal to answer."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        try:
            pair = base64.b64decode(request.headers.get("cpro-account", ""), validate=True).decode()
            login, _, password = pair.partition(":")
        except (binascii.Error, ValueError):
            login, password = "", None
        if not login or self.accounts.get(login) != password:
            return JSONResponse({"codeRetour": 10001, "libelle": "Compte technique inconnu"}, status_code=403)
        return login

    def _integrate(self, flux: Flux) -> None:
        flux.report = "IN_INTEGRE"
        for number in flux.invoice_numbers:
            invoice = Invoice(id=len(self.invoices) + 1000, number=number, flux=flux.number,
                              account=flux.account, history=["DEPOSEE", "MISE_A_DISPOSITION"])
            self.invoices[invoice.id] = invoice


def _documents(name: str, content: bytes) -> list[bytes]:
    """The documents of a deposit: the file itself, or each file of a tar.gz (several invoices)."""
    if not name.endswith((".tar.gz", ".tgz")):
        return [content]
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
            return [archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()]
    except (tarfile.TarError, OSError):
        return []


def _invoice_number(syntax: str, content: bytes) -> str | None:
    """The invoice number the document carries, or None when it is not a document of `syntax`."""
    if syntax.endswith("FACTURX") or syntax.endswith("PDF"):
        if not content.startswith(b"%PDF"):
            return None
        from facturx import get_xml_from_pdf
        try:
            _, content = get_xml_from_pdf(content, check_xsd=False)
        except Exception:
            return None
        if not content:
            return None
    try:
        root = etree.fromstring(content, _PARSER)
    except etree.XMLSyntaxError:
        return None
    kind = "CII" if "CII" in syntax else "UBL"
    found = root.getroottree().xpath(_NUMBER_PATHS[0 if kind == "CII" else 1])
    return found[0].text.strip() if found and found[0].text else None


def _attachments(syntax: str, content: bytes) -> list[tuple[str, bytes]]:
    """The files an invoice document carries: a Factur-X's embedded files (but its XML), a CII's or
    UBL's base64 binary objects."""
    if content.startswith(b"%PDF"):
        from pypdf import PdfReader
        try:
            embedded = PdfReader(io.BytesIO(content)).attachments
        except Exception:
            return []
        return [(name, data) for name, datas in embedded.items() if name != "factur-x.xml" for data in datas]
    try:
        root = etree.fromstring(content, _PARSER)
    except etree.XMLSyntaxError:
        return []
    found = []
    for element in root.xpath(_ATTACHMENT_PATHS[0 if "CII" in syntax else 1]):
        try:
            found.append((element.get("filename") or "", base64.b64decode(element.text or "", validate=True)))
        except (binascii.Error, ValueError):
            found.append((element.get("filename") or "", b""))
    return found


def _attachment_refusal(attachments: list[tuple[str, bytes]]) -> str | None:
    """Why Chorus Pro refuses these attachments, or None."""
    for name, data in attachments:
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if not name or len(name) > 50:
            return f"Le nom de la pièce jointe {name[:60]!r} est absent ou dépasse 50 caractères"
        if extension not in ATTACHMENT_EXTENSIONS:
            return f"L'extension de la pièce jointe {name!r} n'est pas autorisée"
        if len(data) > MAX_FILE_BYTES:
            return f"La pièce jointe {name!r} dépasse la taille maximale de 10 Mo"
    return None

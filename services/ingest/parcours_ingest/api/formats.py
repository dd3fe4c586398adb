"""Reading `POST /v1/invoices` bodies in every accepted format into one Submission:
JSON, UBL/CII XML, Factur-X PDF, or multipart (JSON data + the PDF)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, replace
from functools import cached_property
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from parcours_runtime.problems import Problem, field_error
from parcours_ingest.api.body import form_parts, is_json_media_type, media_type_of, parse_json, read_body
from parcours_ingest.config import Settings
from parcours_ingest.domain.arithmetic import check_arithmetic
from parcours_ingest.domain.documents import DocumentError, Issue
from parcours_ingest.domain.documents.cii import read_cii
from parcours_ingest.domain.documents.pdf import PdfLimits, inspect_pdf
from parcours_ingest.domain.documents.reader import Extraction
from parcours_ingest.domain.documents.schemas import xsd_issues
from parcours_ingest.domain.documents.ubl import read_ubl
from parcours_ingest.domain.documents.xml import parse_xml, syntax_of
from parcours_ingest.domain.idempotency import request_fingerprint
from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.domain.rules import date_violations, identifier_violations
from parcours_ingest.domain.schematron import FRENCH_CTC, violations as schematron_violations
from parcours_ingest.store.invoices import SourceDocument

XML_MEDIA_TYPES = ("application/xml", "text/xml")
ACCEPTED = "application/json, application/xml (UBL 2.1 or CII D16B), application/pdf (Factur-X) or multipart/form-data"


@dataclass(frozen=True)
class Submission:
    """A checked invoice and what came with it; `fingerprint` tells a retry from another request."""

    invoice: Invoice
    pdf: bytes | None = None
    source: SourceDocument | None = None
    number_pointer: str = "/number"
    document_digest: str | None = None  # XML and PDF bodies: the SHA-256 of the document sent is the fingerprint

    @cached_property
    def fingerprint(self) -> str:
        """Worked out when asked (an Idempotency-Key, a conflict): most requests never need it. For JSON,
        of the invoice as validated, so that key order and whitespace do not matter."""
        if self.document_digest is not None:
            return self.document_digest
        fingerprint = request_fingerprint(self.invoice.model_dump(mode="json"))
        if self.pdf is not None:
            fingerprint = request_fingerprint({"invoice": fingerprint, "pdf": hashlib.sha256(self.pdf).hexdigest()})
        return fingerprint


async def read_submission(request: Request, *, settings: Settings) -> Submission:
    """The invoice in the body, whatever its accepted format; a problem (4xx) otherwise, nothing kept."""
    media_type = media_type_of(request.headers.get("content-type", ""))
    if not (is_json_media_type(media_type) or media_type in XML_MEDIA_TYPES
            or media_type in ("application/pdf", "multipart/form-data")):
        raise Problem(415, f"Send the invoice as {ACCEPTED}.")
    raw = await read_body(request, max_bytes=settings.max_body_bytes)
    try:
        if is_json_media_type(media_type):
            return await _from_json(parse_json(raw), settings=settings)
        if media_type in XML_MEDIA_TYPES:
            return await asyncio.to_thread(_from_xml, raw, settings=settings, media_type=media_type)
        if media_type == "application/pdf":
            return await asyncio.to_thread(_from_facturx, raw, settings=settings)
        return await _from_multipart(raw, request.headers.get("content-type", ""), settings=settings)
    except DocumentError as exc:
        raise document_problem(exc) from None


def document_problem(exc: DocumentError) -> Problem:
    """A refused document as the problem the API answers."""
    return Problem(exc.status, exc.detail, slug=exc.slug, errors=[_error_entry(issue) for issue in exc.issues] or None)


def pdf_limits(settings: Settings) -> PdfLimits:
    return PdfLimits(max_pages=settings.max_pdf_pages, max_decompressed_bytes=settings.max_pdf_stream_bytes,
                     max_xml_bytes=settings.max_body_bytes)


async def _from_json(payload: Any, *, settings: Settings, pdf: bytes | None = None) -> Submission:
    if pdf is None and not (isinstance(payload, dict) and payload.get("pdf")):
        return json_submission(payload, settings=settings)
    return await asyncio.to_thread(json_submission, payload, settings=settings, pdf=pdf)  # reading the PDF blocks


def json_submission(payload: Any, *, settings: Settings, pdf: bytes | None = None) -> Submission:
    """What `POST /v1/invoices` makes of a JSON invoice (and its PDF), without the request: batches use it.
    Raises as the route would (RequestValidationError, Problem, DocumentError)."""
    invoice = parse_invoice(payload, settings=settings)
    attached = pdf if pdf is not None else invoice.pdf_bytes()
    if attached is not None:
        inspect_pdf(attached, limits=pdf_limits(settings))
    return Submission(invoice=invoice, pdf=pdf)


def parse_invoice(payload: Any, *, settings: Settings) -> Invoice:
    """The validated JSON invoice; 422 listing every schema error, or else every arithmetic or rule violation."""
    try:
        invoice = Invoice.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
    mismatches = check_arithmetic(invoice)
    if mismatches:
        raise Problem(422, "The invoice amounts do not add up.", slug="arithmetic-error", errors=[
            {**field_error(m.path, m.detail, "arithmetic-mismatch"), "expected": str(m.expected), "given": str(m.given)}
            for m in mismatches
        ])
    violations = _rule_violations(invoice, settings=settings)
    if violations:
        raise Problem(422, "The invoice breaks business rules.", slug="business-rule-violation",
                      errors=[field_error(v.path, v.detail, v.code) for v in violations])
    return invoice


def _rule_violations(invoice: Invoice, *, settings: Settings) -> list:
    found = date_violations(invoice, today=date.today())
    if settings.identifier_checksums:
        found = identifier_violations(invoice) + found
    return found


def _from_xml(raw: bytes, *, settings: Settings, media_type: str, pdf: bytes | None = None) -> Submission:
    root = parse_xml(raw, max_depth=settings.max_xml_depth)
    syntax = syntax_of(root)
    if settings.xsd_validation:
        issues = xsd_issues(root)
        if issues:
            raise DocumentError(422, "xsd-invalid", f"The {syntax.upper()} document is not valid against its XSD.",
                                issues)
    extraction = read_ubl(root) if syntax == "ubl" else read_cii(root)
    invoice = _checked(extraction, settings=settings)
    if settings.schematron:
        check_schematron(root, raw, syntax, extraction, french_ctc=settings.schematron_fr_ctc)
    source = SourceDocument(format="factur-x" if pdf is not None else syntax, media_type=media_type, content=raw)
    return Submission(invoice=invoice, pdf=pdf, source=source, number_pointer=extraction.source_of(("number",)),
                      document_digest=hashlib.sha256(pdf if pdf is not None else raw).hexdigest())


def _checked(extraction: Extraction, *, settings: Settings) -> Invoice:
    """The model read from the document, with every error at the XPath it came from."""
    try:
        invoice = Invoice.model_validate(extraction.payload)
    except ValidationError as exc:
        raise DocumentError(422, "validation-error", "The document does not fit the invoice model.", [
            Issue(xpath=extraction.source_of(err["loc"]), detail=err["msg"], code=err["type"], field=tuple(err["loc"]))
            for err in exc.errors(include_url=False, include_input=False)]) from None
    mismatches = check_arithmetic(invoice)
    if mismatches:
        raise DocumentError(422, "arithmetic-error", "The invoice amounts do not add up.", [
            Issue(xpath=extraction.source_of(m.path), detail=m.detail, code="arithmetic-mismatch", field=m.path,
                  expected=str(m.expected), given=str(m.given)) for m in mismatches])
    violations = _rule_violations(invoice, settings=settings)
    if violations:
        raise DocumentError(422, "business-rule-violation", "The invoice breaks business rules.", [
            Issue(xpath=extraction.source_of(v.path), detail=v.detail, code=v.code, field=v.path) for v in violations])
    return invoice


def check_schematron(root, raw: bytes, syntax: str, extraction: Extraction, *, french_ctc: bool = False) -> None:
    """The EN 16931 schematron, and with `french_ctc` the French CTC rules where the syntax has them:
    DocumentError 422 listing every fatal rule (BR-CO-10…, BR-FR-…) at its XPath, with the model field it
    reads into when there is one."""
    issues = schematron_violations(root, raw, syntax)
    french = schematron_violations(root, raw, FRENCH_CTC[syntax]) if french_ctc and syntax in FRENCH_CTC else []
    if issues or french:
        rules = "EN 16931 business rules" + (" and French CTC rules" if french else "")
        raise DocumentError(422, "business-rule-violation", f"The invoice breaks {rules}.",
                            [replace(issue, field=extraction.field_at(issue.xpath)) for issue in issues + french])


def _error_entry(issue: Issue) -> dict[str, Any]:
    """An issue as a problem's `errors` item: `pointer` is the XPath in the document sent, `field` the JSON
    pointer in the invoice model (as in JSON bodies)."""
    entry: dict[str, Any] = {"pointer": issue.xpath, "detail": issue.detail, "code": issue.code}
    if issue.expected is not None:
        entry["expected"], entry["given"] = issue.expected, issue.given
    if issue.field is not None:
        entry["field"] = field_error(issue.field, "")["pointer"]
    if issue.line is not None:
        entry["line"] = issue.line
    return entry


def _from_facturx(raw: bytes, *, settings: Settings) -> Submission:
    xml = inspect_pdf(raw, limits=pdf_limits(settings))
    if xml is None:
        raise DocumentError(422, "pdf-without-invoice-data",
                            "This PDF embeds no Factur-X/ZUGFeRD XML. Send it as multipart/form-data with a part "
                            "`invoice` (the JSON invoice) and a part `pdf` (this file).")
    return _from_xml(xml, settings=settings, media_type="application/xml", pdf=raw)


async def _from_multipart(raw: bytes, content_type: str, *, settings: Settings) -> Submission:
    parts = _form_parts(raw, content_type)
    if "invoice" not in parts:
        raise Problem(422, "A multipart invoice needs a part `invoice` (the JSON invoice) and a part `pdf`.",
                      errors=[field_error(("invoice",), "missing part", "missing")])
    payload = parse_json(parts["invoice"])
    pdf = parts.get("pdf")
    if pdf is not None and isinstance(payload, dict) and payload.get("pdf") is not None:
        raise Problem(422, "Send the PDF either as the `pdf` part or inside the JSON, not both.",
                      errors=[field_error(("pdf",), "given twice", "conflict")])
    return await _from_json(payload, settings=settings, pdf=pdf)


def _form_parts(raw: bytes, content_type: str) -> dict[str, bytes]:
    """The parts `invoice` and `pdf` of a multipart/form-data body (the first of each)."""
    parts: dict[str, bytes] = {}
    for part in form_parts(raw, content_type):
        if part.name in ("invoice", "pdf") and part.name not in parts:
            parts[part.name] = part.content
    return parts

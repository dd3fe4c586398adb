"""Supporting documents carried inside a structured invoice (EN 16931 BG-24), as a partner that
takes one file per invoice expects them: CII `AdditionalReferencedDocument` (type 916) with an
`AttachmentBinaryObject`, UBL `AdditionalDocumentReference` with an `EmbeddedDocumentBinaryObject`,
each placed where its schema wants it. No IO."""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass

from lxml import etree

_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
SUPPORTING_DOCUMENT = "916"  # UNTDID 1001: reference document, supporting the invoice

# What follows the supporting documents in their parent, per schema (they go before the first found).
_AFTER_IN_CII_AGREEMENT = ("RequisitionerReferencedDocument", "BuyerAgentTradeParty",
                           "PurchaseConditionsReferencedDocument", "SpecifiedProcuringProject",
                           "UltimateCustomerOrderReferencedDocument")
_AFTER_IN_UBL = ("ProjectReference", "Signature", "AccountingSupplierParty")


@dataclass(frozen=True)
class AttachedFile:
    filename: str
    media_type: str
    content: bytes


def with_attachments(root: etree._Element, syntax: str, files: list[AttachedFile]) -> bytes:
    """The invoice (`cii` or `ubl`, parsed) serialised with the files embedded; `root` is left as it was."""
    root = copy.deepcopy(root)
    if syntax == "cii":
        [parent] = root.xpath("//ram:ApplicableHeaderTradeAgreement", namespaces={"ram": _RAM}) or [None]
        if parent is None:
            raise ValueError("the CII has no ApplicableHeaderTradeAgreement to reference documents from")
        elements = [_cii_reference(file) for file in files]
        _insert(parent, elements, before=_AFTER_IN_CII_AGREEMENT)
    elif syntax == "ubl":
        _insert(root, [_ubl_reference(file) for file in files], before=_AFTER_IN_UBL)
    else:
        raise ValueError(f"no supporting documents inside a {syntax!r} document")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _cii_reference(file: AttachedFile) -> etree._Element:
    reference = etree.Element(f"{{{_RAM}}}AdditionalReferencedDocument")
    etree.SubElement(reference, f"{{{_RAM}}}IssuerAssignedID").text = file.filename
    etree.SubElement(reference, f"{{{_RAM}}}TypeCode").text = SUPPORTING_DOCUMENT
    etree.SubElement(reference, f"{{{_RAM}}}Name").text = file.filename
    binary = etree.SubElement(reference, f"{{{_RAM}}}AttachmentBinaryObject",
                              mimeCode=file.media_type, filename=file.filename)
    binary.text = base64.b64encode(file.content).decode()
    return reference


def _ubl_reference(file: AttachedFile) -> etree._Element:
    reference = etree.Element(f"{{{_CAC}}}AdditionalDocumentReference")
    etree.SubElement(reference, f"{{{_CBC}}}ID").text = file.filename
    attachment = etree.SubElement(reference, f"{{{_CAC}}}Attachment")
    binary = etree.SubElement(attachment, f"{{{_CBC}}}EmbeddedDocumentBinaryObject",
                              mimeCode=file.media_type, filename=file.filename)
    binary.text = base64.b64encode(file.content).decode()
    return reference


def _insert(parent: etree._Element, elements: list[etree._Element], *, before: tuple[str, ...]) -> None:
    """Insert `elements` before the first child named in `before`, else at the end."""
    children = list(parent)
    index = next((i for i, child in enumerate(children)
                  if isinstance(child.tag, str) and etree.QName(child).localname in before), len(children))
    for offset, element in enumerate(elements):
        parent.insert(index + offset, element)

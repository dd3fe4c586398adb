"""Reading an invoice's values out of an XML tree into the JSON invoice's shape, remembering the
XPath each value came from, so that every later error points into the document that was sent."""

from __future__ import annotations

import re
from typing import Any, get_args

from lxml import etree

from parcours_ingest.domain.documents import DocumentError, Issue
from parcours_ingest.domain.documents.xml import NAMESPACES, path_of
from parcours_ingest.domain.invoice import BusinessProcess

Loc = tuple[str | int, ...]
_BUSINESS_PROCESSES = frozenset(get_args(BusinessProcess))
_SCHEME = re.compile(r"^(?:[0-9]{4}|[A-Z]{2})$")


class Extraction:
    """The payload being built, where each value came from, and the business terms found missing."""

    def __init__(self, root: etree._Element):
        self.root = root
        self.payload: dict[str, Any] = {}
        self.sources: dict[Loc, str] = {(): path_of(root)}
        self.missing: list[Issue] = []

    def find(self, context: etree._Element, xpath: str) -> etree._Element | None:
        found = context.xpath(xpath, namespaces=NAMESPACES)
        return found[0] if found else None

    def find_all(self, context: etree._Element, xpath: str) -> list[etree._Element]:
        return context.xpath(xpath, namespaces=NAMESPACES)

    def at(self, loc: Loc, context: etree._Element, xpath: str | None = None) -> str:
        """Remember that `loc` comes from `context` (or its `xpath`, when that is absent); its path."""
        element = context if xpath is None else self.find(context, xpath)
        path = path_of(element) if element is not None else f"{path_of(context)}/{xpath}"
        self.sources[loc] = path
        return path

    def text(self, context: etree._Element | None, xpath: str, loc: Loc, term: str, *,
             required: bool = True) -> str | None:
        """The stripped text at `xpath` under `context`, recorded at `loc`; None (and, if required,
        a missing-term issue) when absent or empty."""
        if context is None:
            return None
        element = self.find(context, xpath)
        path = self.at(loc, context, xpath)
        value = (element.text or "").strip() if element is not None else ""
        if not value:
            if required:
                self.missing.append(Issue(xpath=path, detail=f"{term} is missing", code="missing", field=loc))
            return None
        return value

    def require(self, context: etree._Element, xpath: str, loc: Loc, term: str) -> etree._Element | None:
        """The element at `xpath`, or None with a missing-term issue."""
        element = self.find(context, xpath)
        path = self.at(loc, context, xpath)
        if element is None:
            self.missing.append(Issue(xpath=path, detail=f"{term} is missing", code="missing", field=loc))
        return element

    def business_process(self, context: etree._Element, xpath: str) -> str | None:
        """BT-23 when it is a French billing framework the model knows; any other value (a Peppol profile URN…)
        says nothing the model carries, and is left out rather than refused."""
        value = self.text(context, xpath, ("business_process",), "BT-23 Business process type", required=False)
        return value if value in _BUSINESS_PROCESSES else None

    def electronic_address(self, party: etree._Element, xpath: str, loc: Loc) -> dict | None:
        """BT-34 / BT-49 with its scheme, when it has both and fits the model (else left out: not needed)."""
        element = self.find(party, xpath)
        value, scheme = ((element.text or "").strip(), element.get("schemeID")) if element is not None else ("", None)
        if not value or not scheme or not _SCHEME.match(scheme) or len(value) > 125 or any(c.isspace() for c in value):
            return None
        self.at(loc + ("electronic_address",), party, xpath)
        return {"scheme": scheme, "value": value}

    def put(self, target: dict[str, Any], key: str, value: Any) -> None:
        """Set `key` unless the value is absent: the model's own defaults and checks then apply."""
        if value is not None:
            target[key] = value

    def raise_if_missing(self) -> None:
        if self.missing:
            raise DocumentError(422, "missing-business-terms",
                                "The document lacks business terms an invoice needs.", self.missing)

    def field_at(self, xpath: str) -> Loc | None:
        """The model field read from `xpath`, else from its nearest recorded ancestor, else from its child
        (a party's wrapper element); None if none."""
        best: Loc | None = None
        for loc, path in self.sources.items():
            if loc and (xpath == path or xpath.startswith(path + "/")) and (best is None or len(path) > len(self.sources[best])):
                best = loc
        if best is None:
            children = [loc for loc, path in self.sources.items()
                        if loc and path.startswith(xpath + "/") and "/" not in path[len(xpath) + 1:]]
            best = min(children, key=len, default=None)
        return best

    def source_of(self, loc: Loc) -> str:
        """The XPath of the deepest recorded prefix of `loc`."""
        for end in range(len(loc), -1, -1):
            if tuple(loc[:end]) in self.sources:
                return self.sources[tuple(loc[:end])]
        return self.sources[()]


def indicator(value: str | None) -> bool:
    """An XML boolean (ChargeIndicator)."""
    return (value or "").strip().lower() in ("true", "1")

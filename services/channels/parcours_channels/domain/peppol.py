"""Peppol: the settings of our access point (channels' `peppol` setting, PARCOURS_CHANNELS_PEPPOL, JSON),
participant identifiers, the UBL invoice made Peppol BIS Billing 3.0, and what the access point's
events mean for a submission. Pure: no IO.

    {"ap_url": "https://ap.example", "api_key": "…", "webhook_secret": "…",   # + webhook_previous_secret while rotating
     "sender_id": "0009:73282932000074",            # else derived from the seller in the invoice
     "receivers": {"CUST-7": "0208:0123456789"}}    # else derived from the buyer (SIRET 0009, SIREN 0002)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, SecretStr

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
PARTICIPANT_SCHEME = "iso6523-actorid-upis"
PROCESS_ID = f"cenbii-procid-ubl::{PROFILE_ID}"
_ROOTS = {"Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
          "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"}
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_NS = {"cac": CAC, "cbc": CBC}
PARTICIPANT = r"^[0-9]{4}:[A-Za-z0-9.:_\-]{1,50}$"  # ICD scheme (ISO 6523) and the identifier
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)

# Invoice Response codes (UNCL4343 subset of Peppol BIS Invoice Response 3.0).
RESPONSE_CODES = ("AB", "IP", "UQ", "CA", "RE", "AP", "PD")
REJECTED = "RE"
FINAL_CODES = frozenset({"RE", "PD"})
RECEIPT_STATUS = "RECEIVED"  # the receiving access point's transport receipt: the tracker reads it as delivered


class PeppolSettings(BaseModel):
    ap_url: str = Field(default="", pattern=r"^$|^https?://", description="Our access point's REST API.")
    api_key: SecretStr = SecretStr("")
    webhook_secret: SecretStr = Field(default=SecretStr(""), description="Signs the access point's event webhooks.")
    webhook_previous_secret: SecretStr = Field(default=SecretStr(""), description="While rotating: the secret being "
                                               "replaced, still accepted (two active at most); empty otherwise.")
    sender_id: str | None = Field(default=None, pattern=PARTICIPANT, description="Our tenant's participant id "
                                  "(scheme:value); else the seller's SIRET (0009) or SIREN (0002).")
    receivers: dict[str, str] = Field(default_factory=dict, description="Customer ref → the buyer's participant id.")
    timeout_seconds: float = Field(default=30, gt=0)
    poll_seconds: float = Field(default=60, gt=0, description="How often due follow-ups are looked for.")
    first_check_seconds: float = Field(default=30, gt=0, description="First poll of a transmission; doubles after.")
    longest_check_seconds: float = Field(default=3600, gt=0)
    receipt_deadline_seconds: float = Field(default=24 * 3600, gt=0, description="No transport receipt by then: "
                                            "given up, the tracker's receipt window raises the incident.")
    follow_days: float = Field(default=60, gt=0, description="How long Invoice Responses are waited for.")

    @property
    def configured(self) -> bool:
        return bool(self.ap_url and self.api_key.get_secret_value())

    def webhook_secrets(self) -> list[str]:
        """The secrets a webhook may be signed with: the current one, and the previous one while rotating."""
        return [s.get_secret_value() for s in (self.webhook_secret, self.webhook_previous_secret) if s.get_secret_value()]


class Refused(ValueError):
    """The invoice cannot go over Peppol as it is (no participant id, not an invoice)."""


@dataclass(frozen=True)
class PeppolDocument:
    xml: bytes
    sender: str    # scheme:value
    receiver: str
    document_type: str


def participant_of(party: etree._Element) -> str | None:
    """A party's participant id from its French identifiers: SIRET (ICD 0009), else SIREN (0002)."""
    siret = party.findtext("cac:PartyIdentification/cbc:ID[@schemeID='0009']", namespaces=_NS)
    if siret and re.fullmatch(r"[0-9]{14}", siret.strip()):
        return f"0009:{siret.strip()}"
    siren = party.findtext("cac:PartyLegalEntity/cbc:CompanyID[@schemeID='0002']", namespaces=_NS)
    if siren and re.fullmatch(r"[0-9]{9}", siren.strip()):
        return f"0002:{siren.strip()}"
    return None


def peppol_bis(ubl: bytes, *, customer_ref: str, sender_id: str | None, receiver_id: str | None) -> PeppolDocument:
    """Ingest's UBL 2.1 (EN 16931) made a Peppol BIS Billing 3.0 document: its CustomizationID and
    ProfileID, an EndpointID for both parties (PEPPOL-EN16931-R010/R020), a buyer reference when
    there is neither one nor an order reference (R003: the customer ref), at most one note (R002)."""
    try:
        root = etree.fromstring(ubl, _PARSER)
    except etree.XMLSyntaxError:
        raise Refused("ingest's UBL is not well-formed XML") from None
    kind = etree.QName(root).localname
    if _ROOTS.get(kind) != etree.QName(root).namespace:
        raise Refused(f"not a UBL invoice or credit note: {kind}")
    seller = root.find("cac:AccountingSupplierParty/cac:Party", _NS)
    buyer = root.find("cac:AccountingCustomerParty/cac:Party", _NS)
    if seller is None or buyer is None:
        raise Refused("the UBL has no seller or buyer party")
    sender = sender_id or participant_of(seller)
    receiver = receiver_id or participant_of(buyer)
    if sender is None:
        raise Refused("no Peppol participant id for the seller (SIRET, SIREN or the peppol sender_id setting)")
    if receiver is None:
        raise Refused(f"no Peppol participant id for customer {customer_ref} (SIRET, SIREN or peppol receivers)")

    customization = root.find("cbc:CustomizationID", _NS)
    if customization is None:
        customization = _element("cbc:CustomizationID")
        root.insert(0, customization)
    customization.text = CUSTOMIZATION_ID
    for old in root.findall("cbc:ProfileID", _NS):
        root.remove(old)
    profile = _element("cbc:ProfileID", PROFILE_ID)
    customization.addnext(profile)

    notes = root.findall("cbc:Note", _NS)
    if len(notes) > 1:
        notes[0].text = "\n".join(note.text or "" for note in notes)
        for note in notes[1:]:
            root.remove(note)
    if root.find("cbc:BuyerReference", _NS) is None and root.find("cac:OrderReference", _NS) is None:
        anchor = [child for child in root if etree.QName(child).localname in (
            "CustomizationID", "ProfileID", "ID", "IssueDate", "DueDate", "InvoiceTypeCode", "CreditNoteTypeCode",
            "Note", "TaxPointDate", "DocumentCurrencyCode", "TaxCurrencyCode", "AccountingCost")][-1]
        anchor.addnext(_element("cbc:BuyerReference", customer_ref))
    _endpoint(seller, sender)
    _endpoint(buyer, receiver)
    document_type = f"busdox-docid-qns::{_ROOTS[kind]}::{kind}##{CUSTOMIZATION_ID}::2.1"
    return PeppolDocument(xml=etree.tostring(root, xml_declaration=True, encoding="UTF-8"), sender=sender,
                          receiver=receiver, document_type=document_type)


def _element(qname: str, text: str | None = None) -> etree._Element:
    prefix, local = qname.split(":")
    element = etree.Element(f"{{{_NS[prefix]}}}{local}")
    element.text = text
    return element


def _endpoint(party: etree._Element, participant: str) -> None:
    for old in party.findall("cbc:EndpointID", _NS):
        party.remove(old)
    scheme, value = participant.split(":", 1)
    endpoint = _element("cbc:EndpointID", value)
    endpoint.set("schemeID", scheme)
    party.insert(0, endpoint)


# What the access point reports about a transmission (by webhook or polling), validated before use.
class ApEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    transmission_id: str = Field(min_length=1, max_length=200)
    type: Literal["transport.receipt", "transport.failed", "invoice.response"]
    at: datetime
    code: str | None = Field(default=None, max_length=8)
    reason: str | None = Field(default=None, max_length=2000)


@dataclass
class Effects:
    """What applying events to a submission means: delivery.acked statuses (ack id, status, at), a
    permanent failure's reason, and the submission's new state."""

    acks: list[tuple[str, str, datetime]] = field(default_factory=list)
    failure: str | None = None
    state: str | None = None
    last_status: str | None = None
    seen: list[str] = field(default_factory=list)


def apply_events(events: list[ApEvent], *, seen: list[str], received: bool) -> Effects:
    """Each event once, in order. A transport receipt proves delivery (RECEIVED); Invoice Response
    codes follow as their own statuses. RE before any receipt is the receiving side refusing the
    message: a permanent failure, so router falls back; RE after it is the buyer refusing the
    invoice it has (REFUSEE): reported, no fallback. A transport failure is permanent too."""
    effects = Effects(seen=list(seen))
    for event in sorted(events, key=lambda e: e.at):
        if event.id in effects.seen or effects.failure is not None:
            continue
        effects.seen.append(event.id)
        if event.type == "transport.receipt":
            received = True
            effects.acks.append((event.id, RECEIPT_STATUS, event.at))
            effects.state, effects.last_status = effects.state or "acknowledged", effects.last_status or RECEIPT_STATUS
            continue
        if event.type == "transport.failed":
            effects.failure = f"the access point could not deliver: {event.reason or 'no reason given'}"
            effects.state, effects.last_status = "rejected", "transport.failed"
            continue
        code = (event.code or "").upper()
        if code not in RESPONSE_CODES:
            continue  # a code we do not know proves nothing more than what we have
        if code == REJECTED and not received:
            effects.failure = f"Invoice Response RE: {event.reason or 'rejected by the receiver'}"
            effects.state, effects.last_status = "rejected", code
            continue
        received = True  # any other answer of the buyer means it has the invoice
        effects.acks.append((event.id, code, event.at))
        effects.state = "done" if code in FINAL_CODES else "acknowledged"
        effects.last_status = code
    return effects

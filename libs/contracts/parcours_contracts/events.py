"""Event models. Every event carries the envelope; `type` is the discriminator.

Money travels as decimal strings (pydantic dumps Decimal as str), dates as ISO 8601,
instants as UTC. Adding an optional field keeps `schema_version`; removing or changing
the meaning of a field bumps it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from enum import IntEnum
from functools import lru_cache
from typing import Annotated, Literal, Self, Union
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema
from pydantic.networks import validate_email

from parcours_contracts import topics


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(timezone.utc))]
"""An instant with a time zone, normalised to UTC."""


@lru_cache(maxsize=4096)
def _checked_email(value: str) -> str:
    # Refusals raise, so only good addresses are kept.
    return validate_email(value)[1]


EmailAddress = Annotated[str, AfterValidator(_checked_email), WithJsonSchema({"type": "string", "format": "email"})]
"""pydantic's EmailStr (the same check, normalisation and schema), checked once per address and process: events
carry the same recipients over and over, and email-validator's ≈ 30 µs an address was a tenth of some consumers'
CPU per event."""


class _Model(BaseModel):
    # Tolerant reader: a consumer on an older contract ignores the optional fields a newer
    # producer added, so services upgrade one at a time (adding a field keeps schema_version).
    model_config = ConfigDict(frozen=True, extra="ignore")


class EventEnvelope(_Model):
    """Fields every event carries."""

    event_id: UUID = Field(default_factory=uuid4, description="Unique id; consumers deduplicate on it.")
    schema_version: int = Field(default=1, ge=1)
    tenant_id: str = Field(min_length=1, max_length=64)
    occurred_at: UtcDatetime = Field(default_factory=utcnow, description="When it happened, UTC.")
    correlation_id: str = Field(min_length=1, max_length=128, description="Ties together every event of one flow.")


class InvoiceEvent(EventEnvelope):
    """Envelope of every event about one invoice; the Kafka key is `invoice_id`."""

    invoice_id: UUID

    @property
    def key(self) -> str:
        return str(self.invoice_id)

    @classmethod
    def following(cls, cause: InvoiceEvent, **fields) -> Self:
        """A new event caused by `cause`: same tenant, invoice and correlation id."""
        return cls(
            tenant_id=cause.tenant_id,
            invoice_id=cause.invoice_id,
            correlation_id=cause.correlation_id,
            **fields,
        )


class Recipient(_Model):
    """One addressee of a delivery."""

    email: EmailAddress
    name: str | None = Field(default=None, max_length=200)


class InvoiceSummary(_Model):
    """What downstream services need to know of an invoice to deliver and dun it."""

    number: str = Field(min_length=1, max_length=64)
    issue_date: date
    due_date: date
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total_excl_tax: Decimal
    total_tax: Decimal
    total_incl_tax: Decimal
    seller_name: str
    buyer_name: str
    customer_ref: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$",
                              description="The tenant's own reference of the buyer (router's directory key).")
    has_pdf: bool = False
    source_format: Literal["json", "ubl", "cii", "factur-x"] | None = Field(
        default=None, description="What the invoice was received as: for ubl, cii and factur-x, ingest keeps the "
                                  "XML (GET /v1/invoices/{id}/source).")
    type_code: Literal["380", "381", "384", "389"] = Field(
        default="380", description="UNTDID 1001 document type (BT-3): 380 invoice, 381 credit note, "
                                   "384 corrected invoice, 389 self-billed invoice.")


class InvoiceReceived(InvoiceEvent):
    """Ingest accepted an invoice."""

    type: Literal["invoice.received"] = "invoice.received"
    invoice: InvoiceSummary


class InvoiceUnroutable(InvoiceEvent):
    """Router could not choose a channel: an incident for the credit team."""

    type: Literal["invoice.unroutable"] = "invoice.unroutable"
    customer_ref: str = Field(max_length=64)
    reason: str = Field(max_length=2000)
    purpose: Literal["invoice", "reminder"] = "invoice"


class Penalties(_Model):
    """Late-payment penalties owed on an overdue B2B invoice (French Code de commerce L441-10)."""

    indemnity: Decimal = Field(description="Fixed recovery indemnity (indemnité forfaitaire de recouvrement).")
    interest: Decimal = Field(description="Late-payment interest accrued so far.")
    rate: Decimal = Field(description="Annual interest rate, in percent.")
    days_late: int = Field(ge=0)
    base: Decimal = Field(description="The amount the interest runs on.")


class GroupedInvoice(_Model):
    """One more overdue invoice of the same customer, listed in a grouped reminder."""

    invoice_id: UUID
    number: str = Field(min_length=1, max_length=64)
    issue_date: date
    due_date: date
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    open_amount: Decimal = Field(description="What remains due on it.")


class ReminderInfo(_Model):
    """Which step of which dunning strategy a reminder is."""

    strategy: str
    step: str
    sequence: int = Field(ge=1)
    channel: str | None = Field(default=None, max_length=64, description=(
        "The channel the strategy step asks for; router uses it first when the customer can take it."))
    template: str | None = Field(default=None, max_length=64, description="The message template the strategy step asks for.")
    tone: Literal["gentle", "firm", "final"] | None = Field(default=None, description=(
        "How insistent the reminder sounds, chosen by dunning (escalating by step); None: the channel decides."))
    grouped: list[GroupedInvoice] = Field(default_factory=list, max_length=200, description=(
        "The customer's other overdue invoices this reminder also covers (grouping on): one message for all."))


class DispatchRequested(InvoiceEvent):
    """Router asks a channel adapter to deliver the invoice (or a reminder of it)."""

    type: Literal["dispatch.requested"] = "dispatch.requested"
    dispatch_id: UUID = Field(default_factory=uuid4, description="One delivery attempt on one channel.")
    channel: str
    fallback_channels: list[str] = Field(default_factory=list, description="Next channels, in order, if this one fails.")
    recipients: list[Recipient] = Field(min_length=1)
    purpose: Literal["invoice", "reminder"] = "invoice"
    reminder: ReminderInfo | None = None
    language: Literal["fr", "en"] | None = Field(default=None, description="The customer's language; channels default to French.")
    invoice: InvoiceSummary
    penalties: Penalties | None = Field(default=None, description="A curative reminder's penalties, from ReminderDue.")


class SentMessage(_Model):
    """One message a channel handed over, and the transport's id for it."""

    recipient: EmailAddress
    message_id: str


class InvoiceDispatched(InvoiceEvent):
    """A channel handed the invoice (or reminder) over to its transport."""

    type: Literal["invoice.dispatched"] = "invoice.dispatched"
    dispatch_id: UUID
    channel: str
    purpose: Literal["invoice", "reminder"] = "invoice"
    reminder: ReminderInfo | None = None
    messages: list[SentMessage] = Field(min_length=1)


class DispatchFailed(InvoiceEvent):
    """A channel could not deliver."""

    type: Literal["dispatch.failed"] = "dispatch.failed"
    dispatch_id: UUID
    channel: str
    purpose: Literal["invoice", "reminder"] = "invoice"
    reminder: ReminderInfo | None = None
    reason: str = Field(max_length=2000)
    permanent: bool = True
    fallback_channels: list[str] = Field(default_factory=list)


class DeliveryAcked(InvoiceEvent):
    """A partner acknowledged technical receipt of the invoice."""

    type: Literal["delivery.acked"] = "delivery.acked"
    channel: str
    ack_id: str = Field(min_length=1, max_length=200)
    status: str = Field(default="received", max_length=64)
    acked_at: UtcDatetime


class LinkClicked(InvoiceEvent):
    """A recipient opened the tracked link."""

    type: Literal["link.clicked"] = "link.clicked"
    dispatch_id: UUID
    recipient: EmailAddress
    ip: str | None = None
    user_agent: str | None = Field(default=None, max_length=512)


class ReminderDue(InvoiceEvent):
    """Dunning decided that a reminder must go out now."""

    type: Literal["reminder.due"] = "reminder.due"
    reminder: ReminderInfo
    reason: str
    invoice: InvoiceSummary
    penalties: Penalties | None = Field(default=None, description="Penalties owed, for curative steps.")


class DeliveryBounced(InvoiceEvent):
    """A message a channel had handed over came back (DSN or asynchronous bounce)."""

    type: Literal["delivery.bounced"] = "delivery.bounced"
    dispatch_id: UUID
    channel: str
    purpose: Literal["invoice", "reminder"] = "invoice"
    recipient: EmailAddress
    message_id: str | None = None
    permanent: bool = Field(description="Hard bounce (the address will never work) or soft (may work later).")
    status: str | None = Field(default=None, max_length=16, description="Enhanced status code, e.g. 5.1.1.")
    diagnostic: str = Field(default="", max_length=2000)


class LifecycleStatus(IntEnum):
    """The French 2026 e-invoicing lifecycle (statuts de cycle de vie)."""

    DEPOSEE = 200
    EMISE = 201
    RECUE = 202
    MISE_A_DISPOSITION = 203
    PRISE_EN_CHARGE = 204
    APPROUVEE = 205
    APPROUVEE_PARTIELLEMENT = 206
    EN_LITIGE = 207
    SUSPENDUE = 208
    COMPLETEE = 209
    REFUSEE = 210
    PAIEMENT_TRANSMIS = 211
    ENCAISSEE = 212
    REJETEE = 213


class InvoiceLifecycleChanged(InvoiceEvent):
    """The tracker moved an invoice to a new lifecycle status (a 2026 code, or a technical
    status Parcours needs such as viewed or bounced)."""

    type: Literal["invoice.lifecycle_changed"] = "invoice.lifecycle_changed"
    status: str = Field(max_length=64, description="Technical status name or the 2026 code's name, e.g. EN_LITIGE.")
    code: LifecycleStatus | None = Field(default=None, description="The 2026 lifecycle code when the status has one.")
    previous_status: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=64, description="Where the signal came from: a channel, the API, the portal.")
    reason: str | None = Field(default=None, max_length=2000)
    status_at: UtcDatetime | None = Field(default=None, description="When the fact that caused the change happened.")


class PaymentRecorded(InvoiceEvent):
    """Money arrived (or was announced) for an invoice; `open_amount` is what remains due."""

    type: Literal["payment.recorded"] = "payment.recorded"
    payment_id: str = Field(min_length=1, max_length=128)
    amount: Decimal
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    paid_on: date
    open_amount: Decimal
    fully_paid: bool
    source: str = Field(max_length=64, description="api, camt053, portal…")
    reference: str | None = Field(default=None, max_length=200)
    status: Literal["transmitted", "received"] | None = Field(
        default=None, description="Payment transmitted by the buyer (211) or received by the seller (212).")


class PaymentPromised(InvoiceEvent):
    """The customer promised to pay by a date."""

    type: Literal["payment.promised"] = "payment.promised"
    promised_on: date
    amount: Decimal | None = None
    source: str = Field(max_length=64)


class IncidentOpened(InvoiceEvent):
    """Something stands between the invoice and its customer: someone should act."""

    type: Literal["incident.opened"] = "incident.opened"
    incident_id: UUID
    kind: str = Field(max_length=64, description="not_received, bounced, unroutable, failed…")
    channel: str | None = None
    evidence: dict = Field(default_factory=dict)
    suggested_action: str | None = Field(default=None, max_length=64, description="resend, other_channel, call…")


class IncidentResolved(InvoiceEvent):
    """Someone (or a later signal) settled the incident."""

    type: Literal["incident.resolved"] = "incident.resolved"
    incident_id: UUID
    resolution: str = Field(max_length=2000)


class Attachment(_Model):
    """A file the recipient joined to an action; the portal keeps the bytes, the event carries their hash."""

    filename: str = Field(min_length=1, max_length=200)
    content_type: str = Field(max_length=100)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class RecipientActionRequested(InvoiceEvent):
    """The recipient answered from the portal (received, approved, disputed, promised a date…);
    the tracker records it as a recipient action and moves the lifecycle, or journals an anomaly."""

    type: Literal["recipient.action_requested"] = "recipient.action_requested"
    kind: str = Field(max_length=64, description="taken_over, approved, partially_approved, disputed, suspended, "
                                                 "completed, refused, promise_to_pay")
    reason: str | None = Field(default=None, max_length=2000)
    promised_on: date | None = None
    amount: Decimal | None = None
    actor: str = Field(max_length=320, description="Who acted: the recipient's e-mail address.")
    attachment: Attachment | None = None
    source: str = Field(default="portal", max_length=64)


class IncidentResolutionRequested(InvoiceEvent):
    """A credit manager settled an incident from the console; the tracker resolves it."""

    type: Literal["incident.resolution_requested"] = "incident.resolution_requested"
    incident_id: UUID
    resolution: str = Field(min_length=1, max_length=2000)
    actor: str = Field(max_length=320, description="The console user.")
    action: Literal["resolve", "called", "resend", "switch_channel"] | None = Field(
        default=None, description="What the console user did about it (omitted: resolve).")


class RedeliveryRequested(InvoiceEvent):
    """A credit manager asks, from the console, for the invoice to be delivered again: on `channel`
    (switch channel) or on the customer's channels as the directory says now (resend). The router
    requests the dispatch with the invoice it last dispatched."""

    type: Literal["redelivery.requested"] = "redelivery.requested"
    channel: str | None = Field(default=None, max_length=64, description="Omitted: the customer's channels.")
    incident_id: UUID | None = Field(default=None, description="The incident this answers, if any.")
    actor: str = Field(max_length=320, description="The console user.")


class TenantEvent(EventEnvelope):
    """Envelope of tenant-level events (no invoice); the Kafka key is `tenant_id`."""

    @property
    def key(self) -> str:
        return self.tenant_id


class CustomerChanged(TenantEvent):
    """The router's customer directory changed: a customer was created, replaced or removed.
    Keyed by tenant and customer reference so each customer's changes stay in order."""

    type: Literal["customer.changed"] = "customer.changed"
    customer_ref: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    name: str | None = Field(default=None, max_length=200)
    group: str | None = Field(default=None, max_length=64)
    language: Literal["fr", "en"] | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=20)
    timezone: str | None = Field(default=None, max_length=64, description=(
        "The customer's IANA time zone (e.g. America/Montreal): reminders reach it in its own sending window."))
    deleted: bool = False

    @property
    def key(self) -> str:
        return f"{self.tenant_id}:{self.customer_ref}"


class TenantApiKeyIssued(TenantEvent):
    """A tenant API key exists; services keep its hash to authenticate requests."""

    type: Literal["tenant.api_key_issued"] = "tenant.api_key_issued"
    key_id: str
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the key; the key itself never travels.")
    tenant_name: str = Field(min_length=1, max_length=200)


class TenantApiKeyRevoked(TenantEvent):
    """A tenant API key no longer authenticates anywhere."""

    type: Literal["tenant.api_key_revoked"] = "tenant.api_key_revoked"
    key_id: str


class BrandingLogo(_Model):
    # bytes in Python, base64 in JSON
    model_config = ConfigDict(frozen=True, extra="ignore", ser_json_bytes="base64", val_json_bytes="base64")

    media_type: Literal["image/png", "image/jpeg", "image/gif"]
    data: bytes = Field(description="The image, URL-safe base64 (at most 100 KiB once decoded).")


class TenantBrandingChanged(TenantEvent):
    """A tenant's branding (set in channels) changed: the whole of it, or `deleted`. Ingest renders the PDFs of
    invoices sent as data with it. Keyed by tenant so its changes stay in order; the last one wins."""

    type: Literal["tenant.branding_changed"] = "tenant.branding_changed"
    name: str | None = Field(default=None, max_length=200, description="The display name shown in the header.")
    logo: BrandingLogo | None = None
    primary_color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    text_color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    legal_footer: str | None = Field(default=None, max_length=300, description=(
        "One line printed at the foot of every page (legal form, capital, RCS, address)."))
    deleted: bool = False


Event = Annotated[
    Union[
        InvoiceReceived,
        InvoiceUnroutable,
        DispatchRequested,
        InvoiceDispatched,
        DispatchFailed,
        DeliveryAcked,
        LinkClicked,
        ReminderDue,
        DeliveryBounced,
        InvoiceLifecycleChanged,
        PaymentRecorded,
        PaymentPromised,
        IncidentOpened,
        IncidentResolved,
        RecipientActionRequested,
        IncidentResolutionRequested,
        RedeliveryRequested,
        CustomerChanged,
        TenantApiKeyIssued,
        TenantApiKeyRevoked,
        TenantBrandingChanged,
    ],
    Field(discriminator="type"),
]

ALL_EVENT_TYPES: dict[str, type[EventEnvelope]] = {
    "invoice.received": InvoiceReceived,
    "invoice.unroutable": InvoiceUnroutable,
    "dispatch.requested": DispatchRequested,
    "invoice.dispatched": InvoiceDispatched,
    "dispatch.failed": DispatchFailed,
    "delivery.acked": DeliveryAcked,
    "link.clicked": LinkClicked,
    "reminder.due": ReminderDue,
    "delivery.bounced": DeliveryBounced,
    "invoice.lifecycle_changed": InvoiceLifecycleChanged,
    "payment.recorded": PaymentRecorded,
    "payment.promised": PaymentPromised,
    "incident.opened": IncidentOpened,
    "incident.resolved": IncidentResolved,
    "recipient.action_requested": RecipientActionRequested,
    "incident.resolution_requested": IncidentResolutionRequested,
    "redelivery.requested": RedeliveryRequested,
    "customer.changed": CustomerChanged,
    "tenant.api_key_issued": TenantApiKeyIssued,
    "tenant.api_key_revoked": TenantApiKeyRevoked,
    "tenant.branding_changed": TenantBrandingChanged,
}

TOPIC_OF: dict[type[EventEnvelope], str] = {
    InvoiceReceived: topics.INVOICE_RECEIVED,
    InvoiceUnroutable: topics.INVOICE_UNROUTABLE,
    DispatchRequested: topics.DISPATCH_REQUESTED,
    InvoiceDispatched: topics.INVOICE_DISPATCHED,
    DispatchFailed: topics.DISPATCH_FAILED,
    DeliveryAcked: topics.DELIVERY_ACKED,
    LinkClicked: topics.LINK_CLICKED,
    ReminderDue: topics.REMINDER_DUE,
    DeliveryBounced: topics.DELIVERY_BOUNCED,
    InvoiceLifecycleChanged: topics.INVOICE_LIFECYCLE,
    PaymentRecorded: topics.PAYMENT_EVENTS,
    PaymentPromised: topics.PAYMENT_EVENTS,
    IncidentOpened: topics.INCIDENT_EVENTS,
    IncidentResolved: topics.INCIDENT_EVENTS,
    RecipientActionRequested: topics.PORTAL_ACTIONS,
    IncidentResolutionRequested: topics.PORTAL_ACTIONS,
    RedeliveryRequested: topics.PORTAL_ACTIONS,
    CustomerChanged: topics.CUSTOMER_EVENTS,
    TenantApiKeyIssued: topics.TENANT_EVENTS,
    TenantApiKeyRevoked: topics.TENANT_EVENTS,
    TenantBrandingChanged: topics.BRANDING_EVENTS,
}

_event_adapter: TypeAdapter = TypeAdapter(Event)


def topic_for(event: EventEnvelope) -> str:
    """The topic an event is published on."""
    return TOPIC_OF[type(event)]


def parse_event(raw: bytes | str) -> EventEnvelope:
    """Parse a message value into its event model; raises pydantic.ValidationError."""
    return _event_adapter.validate_json(raw)

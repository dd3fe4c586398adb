"""Kafka topic names. One topic per event type; the message key is the invoice id
(tenant id for tenant events) so that every invoice's events stay in order."""

TENANT_EVENTS = "tenant.events"
INVOICE_RECEIVED = "invoice.received"
INVOICE_UNROUTABLE = "invoice.unroutable"
DISPATCH_REQUESTED = "dispatch.requested"
INVOICE_DISPATCHED = "invoice.dispatched"
DISPATCH_FAILED = "dispatch.failed"
DELIVERY_ACKED = "delivery.acked"
LINK_CLICKED = "link.clicked"
REMINDER_DUE = "reminder.due"
DELIVERY_BOUNCED = "delivery.bounced"
INVOICE_LIFECYCLE = "invoice.lifecycle"
PAYMENT_EVENTS = "payment.events"
INCIDENT_EVENTS = "incident.events"
CUSTOMER_EVENTS = "customer.events"
PORTAL_ACTIONS = "portal.actions"
BRANDING_EVENTS = "branding.events"

ALL = (
    TENANT_EVENTS,
    INVOICE_RECEIVED,
    INVOICE_UNROUTABLE,
    DISPATCH_REQUESTED,
    INVOICE_DISPATCHED,
    DISPATCH_FAILED,
    DELIVERY_ACKED,
    LINK_CLICKED,
    REMINDER_DUE,
    DELIVERY_BOUNCED,
    INVOICE_LIFECYCLE,
    PAYMENT_EVENTS,
    INCIDENT_EVENTS,
    CUSTOMER_EVENTS,
    PORTAL_ACTIONS,
    BRANDING_EVENTS,
)

DLQ_SUFFIX = ".dlq"


def dlq(topic: str) -> str:
    """Dead-letter topic that holds the messages of `topic` no consumer could handle."""
    return topic + DLQ_SUFFIX


ALL_WITH_DLQ = ALL + tuple(dlq(t) for t in ALL)

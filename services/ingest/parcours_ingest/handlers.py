"""One function per consumed event type. Ingest keeps what the router announces of each customer
(group, language): the PDFs it prepares take that group's CGV and that language; and what channels
announces of each tenant's branding, which the PDFs it renders take. The runtime's tenancy handlers
keep its API keys."""

from __future__ import annotations

from parcours_contracts import CustomerChanged, TenantBrandingChanged
from parcours_contracts.events import EventEnvelope
from parcours_runtime.handlers import Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

from parcours_ingest.domain.outgoing import branding_fingerprint
from parcours_ingest.store.documents import save_branding, save_customer_profile


def build(ctx: ServiceContext) -> dict[type[EventEnvelope], Handler]:
    async def on_customer_changed(event: CustomerChanged, uow: UnitOfWork) -> None:
        await save_customer_profile(uow.session, tenant_id=event.tenant_id, customer_ref=event.customer_ref,
                                    group=event.group, language=event.language, deleted=event.deleted)

    async def on_branding_changed(event: TenantBrandingChanged, uow: UnitOfWork) -> None:
        values = None if event.deleted else {
            "name": event.name, "primary_color": event.primary_color, "text_color": event.text_color,
            "legal_footer": event.legal_footer, "logo_media_type": event.logo.media_type if event.logo else None,
            "logo": event.logo.data if event.logo else None}
        if values is not None:
            values["fingerprint"] = branding_fingerprint(values)
        await save_branding(uow.session, tenant_id=event.tenant_id, occurred_at=event.occurred_at, values=values)

    return {CustomerChanged: on_customer_changed, TenantBrandingChanged: on_branding_changed}

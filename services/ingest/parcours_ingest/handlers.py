"""One function per consumed event type. Ingest keeps what the router announces of each customer
(group, language): the PDFs it prepares take that group's CGV and that language. The runtime's
tenancy handlers keep its API keys."""

from __future__ import annotations

from parcours_contracts import CustomerChanged
from parcours_contracts.events import EventEnvelope
from parcours_runtime.consumer import Handler
from parcours_runtime.service import ServiceContext
from parcours_runtime.uow import UnitOfWork

from parcours_ingest.store.documents import save_customer_profile


def build(ctx: ServiceContext) -> dict[type[EventEnvelope], Handler]:
    async def on_customer_changed(event: CustomerChanged, uow: UnitOfWork) -> None:
        await save_customer_profile(uow.session, tenant_id=event.tenant_id, customer_ref=event.customer_ref,
                                    group=event.group, language=event.language, deleted=event.deleted)

    return {CustomerChanged: on_customer_changed}

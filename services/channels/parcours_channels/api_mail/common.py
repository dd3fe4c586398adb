"""What the tenant mail routes share: the authenticated tenant, and forgetting a setting."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response

from parcours_channels.adapters.mail.profile import tenant_mail_cache
from parcours_channels.store.tenant_mail import Branding, SenderDomain, delete_tenant_row
from parcours_contracts.events import EventEnvelope
from parcours_runtime.problems import Problem
from parcours_runtime.service import ServiceContext
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork

CurrentTenant = Annotated[Tenant, Depends(authenticate)]


async def delete_setting(ctx: ServiceContext, model: type[SenderDomain] | type[Branding], *, tenant_id: str,
                         missing: Problem, announce: EventEnvelope | None = None) -> Response:
    """Delete the tenant's sender domain or branding (204); `missing` is raised when it had none. `announce`
    is published (outbox) in the same transaction when a row was deleted."""
    async with UnitOfWork(ctx.sessions) as uow:
        deleted = await delete_tenant_row(uow.session, model, tenant_id=tenant_id)
        if deleted and announce is not None:
            uow.publish(announce)
        await uow.commit()
    if not deleted:
        raise missing
    tenant_mail_cache(ctx).forget(tenant_id)
    return Response(status_code=204)

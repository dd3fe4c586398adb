"""`/v1/templates/{language}/{part}`: a tenant's own subject, text or HTML template, accepted
only when it renders against sample data (otherwise 422, nothing stored)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from parcours_channels.adapters.mail.overrides import override_errors, package_source
from parcours_channels.adapters.mail.profile import tenant_mail_cache
from parcours_channels.adapters.mail.render import template_name
from parcours_channels.api_mail.common import CurrentTenant
from parcours_channels.store.tenant_mail import (
    delete_template_override,
    list_template_overrides,
    save_template_override,
)
from parcours_runtime.problems import Problem
from parcours_runtime.uow import UnitOfWork

router = APIRouter(prefix="/templates", tags=["templates"])
Language = Literal["fr", "en"]
Part = Literal["subject", "body_text", "body_html"]


class TemplateWrite(BaseModel):
    source: str = Field(min_length=1, max_length=50_000, description="Jinja2 (sandboxed). Variables: number, "
                        "seller, buyer, amount, issue_date, due_date, recipient_name, link, purpose, tone, "
                        "reminder, penalties, brand, signature, language. body_html may extend 'base.html.j2'.")


class TemplateRead(BaseModel):
    language: Language
    part: Part
    source: str
    overridden: bool = Field(description="False: the platform's template, shown as a starting point.")
    updated_at: datetime | None = None


class TemplateSummary(BaseModel):
    language: Language
    part: Part
    updated_at: datetime


class TemplateList(BaseModel):
    overrides: list[TemplateSummary]


@router.get("", response_model=TemplateList, summary="The tenant's template overrides")
async def list_templates(request: Request, tenant: CurrentTenant) -> TemplateList:
    async with request.app.state.ctx.sessions() as session:
        rows = await list_template_overrides(session, tenant_id=tenant.id)
    return TemplateList(overrides=[TemplateSummary(language=r.language, part=r.part, updated_at=r.updated_at)
                                   for r in rows])


@router.get("/{language}/{part}", response_model=TemplateRead, summary="The template in use for a part")
async def read_template(language: Language, part: Part, request: Request, tenant: CurrentTenant) -> TemplateRead:
    async with request.app.state.ctx.sessions() as session:
        rows = await list_template_overrides(session, tenant_id=tenant.id)
    for row in rows:
        if (row.language, row.part) == (language, part):
            return TemplateRead(language=language, part=part, source=row.source, overridden=True,
                                updated_at=row.updated_at)
    return TemplateRead(language=language, part=part, source=package_source(language, part), overridden=False)


@router.put("/{language}/{part}", response_model=TemplateRead, summary="Override a template (validated first)")
async def put_template(language: Language, part: Part, body: TemplateWrite, request: Request,
                       tenant: CurrentTenant) -> TemplateRead:
    ctx = request.app.state.ctx
    async with UnitOfWork(ctx.sessions) as uow:
        rows = await list_template_overrides(uow.session, tenant_id=tenant.id)
        others = tuple((template_name(r.language, r.part), r.source) for r in rows
                       if (r.language, r.part) != (language, part))
        errors = override_errors(language=language, part=part, source=body.source, others=others)
        if errors:
            raise Problem(422, "The template does not render against sample data; nothing was changed.",
                          errors=errors)
        await save_template_override(uow.session, tenant_id=tenant.id, language=language, part=part,
                                     source=body.source)
        await uow.commit()
    tenant_mail_cache(ctx).forget(tenant.id)
    return await read_template(language, part, request, tenant)


@router.delete("/{language}/{part}", status_code=204, summary="Back to the platform's template")
async def delete_template(language: Language, part: Part, request: Request, tenant: CurrentTenant) -> Response:
    ctx = request.app.state.ctx
    async with UnitOfWork(ctx.sessions) as uow:
        deleted = await delete_template_override(uow.session, tenant_id=tenant.id, language=language, part=part)
        await uow.commit()
    if not deleted:
        raise Problem(404, "This template is not overridden.")
    tenant_mail_cache(ctx).forget(tenant.id)
    return Response(status_code=204)

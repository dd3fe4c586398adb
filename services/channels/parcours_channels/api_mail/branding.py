"""`/v1/branding`: how a tenant's messages look (name, logo, colours, signature), and the PDFs ingest renders
for invoices sent as data (name, inline logo, primary colour, legal footer): every change is announced to
ingest (`tenant.branding_changed`) through the outbox, in the transaction that writes it."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, HttpUrl, field_validator

from parcours_channels.adapters.mail.profile import tenant_mail_cache
from parcours_channels.api_mail.common import CurrentTenant, delete_setting
from parcours_channels.store.tenant_mail import Branding, get_branding, save_branding
from parcours_contracts import BrandingLogo, TenantBrandingChanged
from parcours_runtime.problems import Problem, field_error
from parcours_runtime.uow import UnitOfWork

router = APIRouter(prefix="/branding", tags=["branding"])

COLOR = r"^#[0-9a-fA-F]{6}$"
LOGO_MAX_BYTES = 100 * 1024  # inline in every message: keep it small
_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/gif": (b"GIF87a", b"GIF89a")}


class InlineLogo(BaseModel):
    media_type: Literal["image/png", "image/jpeg", "image/gif"]
    data: str = Field(description=f"Base64 image, at most {LOGO_MAX_BYTES // 1024} KiB once decoded; "
                                  "sent inline with every message.")


class BrandingWrite(BaseModel):
    name: str | None = Field(default=None, max_length=200, description="Shown in the header; else the seller's name.")
    logo_url: HttpUrl | None = Field(default=None, description="An https URL of the logo (not sent with the mail).")
    logo: InlineLogo | None = Field(default=None, description="Or the logo itself, sent inline (cid:).")
    primary_color: str | None = Field(default=None, pattern=COLOR, examples=["#0b7285"])
    text_color: str | None = Field(default=None, pattern=COLOR)
    signature: str | None = Field(default=None, max_length=2000, description="Plain text, one line per line.")
    legal_footer: str | None = Field(default=None, max_length=300, description=(
        "One line at the foot of every PDF ingest renders (legal form, capital, RCS, address)."))

    @field_validator("logo_url")
    @classmethod
    def _https(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and url.scheme != "https":
            raise ValueError("the logo URL must be https")
        return url


class LogoRead(BaseModel):
    media_type: str
    bytes: int


class BrandingRead(BaseModel):
    name: str | None
    logo_url: str | None
    logo: LogoRead | None
    primary_color: str | None
    text_color: str | None
    signature: str | None
    legal_footer: str | None
    updated_at: datetime


def _read(row: Branding) -> BrandingRead:
    logo = LogoRead(media_type=row.logo_media_type, bytes=len(row.logo_data)) if row.logo_data else None
    return BrandingRead(name=row.name, logo_url=row.logo_url, logo=logo, primary_color=row.primary_color,
                        text_color=row.text_color, signature=row.signature, legal_footer=row.legal_footer,
                        updated_at=row.updated_at)


def branding_changed(tenant_id: str, row: Branding | None) -> TenantBrandingChanged:
    """The event telling ingest the tenant's branding now is `row` (None: deleted)."""
    if row is None:
        return TenantBrandingChanged(tenant_id=tenant_id, correlation_id=f"branding-{tenant_id}", deleted=True)
    logo = BrandingLogo(media_type=row.logo_media_type, data=row.logo_data) if row.logo_data else None
    return TenantBrandingChanged(tenant_id=tenant_id, correlation_id=f"branding-{tenant_id}", name=row.name, logo=logo,
                                 primary_color=row.primary_color, text_color=row.text_color,
                                 legal_footer=row.legal_footer)


def _logo_bytes(logo: InlineLogo) -> bytes:
    try:
        data = base64.b64decode(logo.data, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(422, "The logo is not valid base64.", errors=[field_error(["logo", "data"], "not base64")])
    if len(data) > LOGO_MAX_BYTES:
        raise Problem(422, "The logo is too large.", errors=[field_error(
            ["logo", "data"], f"{len(data)} bytes, at most {LOGO_MAX_BYTES}", "too_large")])
    if not data.startswith(_MAGIC[logo.media_type]):
        raise Problem(422, "The logo is not the image its media type says.", errors=[field_error(
            ["logo", "data"], f"not a {logo.media_type} image", "media_type_mismatch")])
    return data


@router.get("", response_model=BrandingRead, summary="The tenant's branding")
async def read_branding(request: Request, tenant: CurrentTenant) -> BrandingRead:
    async with request.app.state.ctx.sessions() as session:
        row = await get_branding(session, tenant_id=tenant.id)
    if row is None:
        raise Problem(404, "No branding: messages use the seller's name and the default colours.")
    return _read(row)


@router.put("", response_model=BrandingRead, summary="Set the tenant's branding (replaces it)")
async def put_branding(body: BrandingWrite, request: Request, tenant: CurrentTenant) -> BrandingRead:
    if body.logo_url is not None and body.logo is not None:
        raise Problem(422, "Give the logo as a URL or inline, not both.",
                      errors=[field_error(["logo"], "logo_url is given too", "exclusive")])
    values = {"name": body.name, "logo_url": str(body.logo_url) if body.logo_url else None,
              "logo_media_type": body.logo.media_type if body.logo else None,
              "logo_data": _logo_bytes(body.logo) if body.logo else None,
              "primary_color": body.primary_color, "text_color": body.text_color, "signature": body.signature,
              "legal_footer": body.legal_footer}
    ctx = request.app.state.ctx
    async with UnitOfWork(ctx.sessions) as uow:
        row = await save_branding(uow.session, tenant_id=tenant.id, **values)
        uow.publish(branding_changed(tenant.id, row))
        await uow.commit()
    tenant_mail_cache(ctx).forget(tenant.id)
    return _read(row)


@router.delete("", status_code=204, summary="Back to the default look")
async def delete_branding(request: Request, tenant: CurrentTenant) -> Response:
    return await delete_setting(request.app.state.ctx, Branding, tenant_id=tenant.id,
                                missing=Problem(404, "No branding to delete."),
                                announce=branding_changed(tenant.id, None))

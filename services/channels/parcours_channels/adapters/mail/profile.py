"""What a tenant set that changes its messages — sender domain and DKIM key, branding, template
overrides — loaded from the channels database and kept for a short while per process (every
dispatch needs it; the API forgets a tenant's entry when it changes it)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from parcours_channels.adapters.mail.render import LOGO_CID, Brand, Overrides, template_name
from parcours_channels.domain.dkim import DkimKey
from parcours_channels.domain.sealing import SealBroken, unseal
from parcours_channels.store.tenant_mail import get_branding, get_sender_domain, list_template_overrides
from parcours_runtime.service import ServiceContext

log = logging.getLogger(__name__)

TENANT_MAIL = "tenant_mail"  # key of the TenantMailCache in ServiceContext.extras


@dataclass(frozen=True)
class Sender:
    address: str
    name: str | None
    dkim: DkimKey

    @property
    def domain(self) -> str:
        return self.dkim.domain


@dataclass(frozen=True)
class InlineImage:
    media_type: str  # image/png, image/jpeg or image/gif
    data: bytes


@dataclass(frozen=True)
class TenantMail:
    sender: Sender | None = None
    brand: Brand | None = None
    logo: InlineImage | None = None  # sent inline as a related part, when the brand has no logo URL
    overrides: Overrides = ()


async def load_tenant_mail(session: AsyncSession, *, tenant_id: str, secrets: list[str]) -> TenantMail:
    """The tenant's mail settings as messages use them (its DKIM key unsealed)."""
    sender_row = await get_sender_domain(session, tenant_id=tenant_id)
    branding = await get_branding(session, tenant_id=tenant_id)
    overrides = await list_template_overrides(session, tenant_id=tenant_id)
    sender = None
    if sender_row is not None:
        try:
            private_pem = unseal(sender_row.sealed_private_key, secrets)
        except SealBroken:  # a lost or rotated-away secret: deliver from the platform rather than not at all
            log.error("tenant %s: its DKIM key does not unseal with key_encryption_secret; sending from the "
                      "platform address until the secret is restored or a new key is made", tenant_id)
        else:
            sender = Sender(address=sender_row.from_address, name=sender_row.from_name,
                            dkim=DkimKey(domain=sender_row.domain, selector=sender_row.selector,
                                         public_key=sender_row.public_key, private_pem=private_pem))
    brand = logo = None
    if branding is not None:
        if branding.logo_data is not None and branding.logo_media_type:
            logo = InlineImage(media_type=branding.logo_media_type, data=branding.logo_data)
        brand = Brand(name=branding.name, primary_color=branding.primary_color, text_color=branding.text_color,
                      signature=branding.signature,
                      logo_src=branding.logo_url or (f"cid:{LOGO_CID}" if logo is not None else None))
    return TenantMail(sender=sender, brand=brand, logo=logo,
                      overrides=tuple(sorted((template_name(o.language, o.part), o.source) for o in overrides)))


class TenantMailCache:
    def __init__(self, ctx: ServiceContext):
        self._ctx = ctx
        self._entries: dict[str, tuple[float, TenantMail]] = {}

    async def get(self, tenant_id: str) -> TenantMail:
        now = asyncio.get_running_loop().time()
        entry = self._entries.get(tenant_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        async with self._ctx.sessions() as session:
            mail = await load_tenant_mail(session, tenant_id=tenant_id,
                                          secrets=self._ctx.settings.key_encryption_secrets())
        self._entries[tenant_id] = (now + self._ctx.settings.tenant_mail_ttl_seconds, mail)
        return mail

    def forget(self, tenant_id: str) -> None:
        """The tenant changed its settings: read them again on its next message."""
        self._entries.pop(tenant_id, None)


def tenant_mail_cache(ctx: ServiceContext) -> TenantMailCache:
    """The process's cache (made on first use)."""
    if TENANT_MAIL not in ctx.extras:
        ctx.extras[TENANT_MAIL] = TenantMailCache(ctx)
    return ctx.extras[TENANT_MAIL]

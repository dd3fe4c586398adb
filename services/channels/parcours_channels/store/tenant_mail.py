"""What a tenant sets about its mail: its sender domain with its DKIM key (the private key
sealed with the service's key-encryption secret), its branding, and its template overrides."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, LargeBinary, String, Text, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_channels.store.base import Base


class SenderDomain(Base):
    """The one domain a tenant's mail goes out from; signed with its current DKIM key."""
    __tablename__ = "sender_domains"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain: Mapped[str] = mapped_column(String(253))
    from_address: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str | None] = mapped_column(String(200))
    selector: Mapped[str] = mapped_column(String(63))
    sealed_private_key: Mapped[str] = mapped_column(Text)  # PEM, encrypted (Fernet) with key_encryption_secret
    public_key: Mapped[str] = mapped_column(Text)  # base64 DER SubjectPublicKeyInfo: the record's p=
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Branding(Base):
    __tablename__ = "brandings"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    logo_url: Mapped[str | None] = mapped_column(String(2000))
    logo_media_type: Mapped[str | None] = mapped_column(String(32))
    logo_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    primary_color: Mapped[str | None] = mapped_column(String(7))
    text_color: Mapped[str | None] = mapped_column(String(7))
    signature: Mapped[str | None] = mapped_column(String(2000))
    legal_footer: Mapped[str | None] = mapped_column(String(300))  # printed on the PDFs ingest renders
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TemplateOverride(Base):
    __tablename__ = "template_overrides"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    part: Mapped[str] = mapped_column(String(16), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def get_sender_domain(session: AsyncSession, *, tenant_id: str) -> SenderDomain | None:
    return await session.get(SenderDomain, tenant_id, populate_existing=True)


async def save_sender_domain(session: AsyncSession, *, tenant_id: str, **values) -> SenderDomain:
    """Create or replace the tenant's sender domain with `values`; return the row."""
    return await _upsert(session, SenderDomain, tenant_id, values)


async def get_branding(session: AsyncSession, *, tenant_id: str) -> Branding | None:
    return await session.get(Branding, tenant_id, populate_existing=True)


async def save_branding(session: AsyncSession, *, tenant_id: str, **values) -> Branding:
    """Create or replace the tenant's branding with `values`; return the row."""
    return await _upsert(session, Branding, tenant_id, values)


async def delete_tenant_row(session: AsyncSession, model: type[SenderDomain] | type[Branding], *,
                            tenant_id: str) -> bool:
    """Forget the tenant's sender domain or branding; False if it had none."""
    result = await session.execute(delete(model).where(model.tenant_id == tenant_id))
    return result.rowcount == 1


async def _upsert(session: AsyncSession, model, tenant_id: str, values: dict):
    await session.execute(
        insert(model).values(tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[model.tenant_id], set_={**values, "updated_at": func.now()})
    )
    return await session.get(model, tenant_id, populate_existing=True)


async def list_template_overrides(session: AsyncSession, *, tenant_id: str) -> list[TemplateOverride]:
    result = await session.scalars(select(TemplateOverride).where(TemplateOverride.tenant_id == tenant_id)
                                   .order_by(TemplateOverride.language, TemplateOverride.part))
    return list(result)


async def save_template_override(session: AsyncSession, *, tenant_id: str, language: str, part: str,
                                 source: str) -> None:
    await session.execute(
        insert(TemplateOverride).values(tenant_id=tenant_id, language=language, part=part, source=source)
        .on_conflict_do_update(index_elements=[TemplateOverride.tenant_id, TemplateOverride.language,
                                               TemplateOverride.part],
                               set_={"source": source, "updated_at": func.now()})
    )


async def delete_template_override(session: AsyncSession, *, tenant_id: str, language: str, part: str) -> bool:
    result = await session.execute(delete(TemplateOverride).where(
        TemplateOverride.tenant_id == tenant_id, TemplateOverride.language == language,
        TemplateOverride.part == part))
    return result.rowcount == 1

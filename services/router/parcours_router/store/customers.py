"""The customer directory: one entry per (tenant, customer ref), its schemas and its queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import ARRAY, DateTime, Index, String, any_, bindparam, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_router.store.base import Base

REF_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
Tag = Annotated[str, Field(min_length=1, max_length=64)]


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_tenant_group_ref", "tenant_id", "group_name", "ref"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    group_name: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    contacts: Mapped[list[dict]] = mapped_column(JSONB)
    channels: Mapped[list[str]] = mapped_column(JSONB)
    tags: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True, doc="IANA zone, e.g. America/Montreal.")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Literal["billing", "accounting", "other"] | None = None


class CustomerWrite(BaseModel):
    """Body of `PUT /v1/customers/{ref}`: the whole entry, replacing any previous one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    group: str = Field(default="default", min_length=1, max_length=64)
    language: Literal["fr", "en"] = "fr"
    contacts: list[Contact] = Field(min_length=1, max_length=20)
    channels: list[str] = Field(min_length=1, max_length=5, description="Preferred channels, best first.")
    tags: list[Tag] = Field(default_factory=list, max_length=20,
                            description="Free labels, e.g. for dunning strategies' customer_tag conditions.")
    timezone: str | None = Field(default=None, min_length=1, max_length=64, examples=["America/Montreal"],
                                 description="The customer's IANA time zone: dunning sends its reminders in the "
                                             "customer's own sending window. None: the platform's.")


class CustomerRead(BaseModel):
    ref: str
    name: str
    group: str
    language: Literal["fr", "en"]
    contacts: list[Contact]
    channels: list[str]
    tags: list[str]
    timezone: str | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, customer: Customer) -> "CustomerRead":
        return cls(ref=customer.ref, name=customer.name, group=customer.group_name, language=customer.language,
                   contacts=customer.contacts, channels=customer.channels, tags=customer.tags,
                   timezone=customer.timezone, created_at=customer.created_at, updated_at=customer.updated_at)


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


async def put_customer(session: AsyncSession, *, tenant_id: str, ref: str, entry: CustomerWrite) -> tuple[Customer, bool]:
    """Create or replace an entry; returns it and whether it was created."""
    values = {
        "name": entry.name, "group_name": entry.group, "language": entry.language,
        "contacts": [contact.model_dump(mode="json", exclude_none=True) for contact in entry.contacts],
        "channels": entry.channels, "tags": entry.tags, "timezone": entry.timezone,
    }
    statement = (
        insert(Customer).values(tenant_id=tenant_id, ref=ref, **values)
        .on_conflict_do_update(index_elements=[Customer.tenant_id, Customer.ref],
                               set_={**values, "updated_at": func.now()})
        # xmax is 0 only on a row this statement inserted (PostgreSQL): one round trip, no race
        .returning(Customer, literal_column("(xmax = 0)").label("inserted"))
        .execution_options(populate_existing=True)
    )
    customer, inserted = (await session.execute(statement)).one()
    return customer, bool(inserted)


async def find_customer(session: AsyncSession, *, tenant_id: str, ref: str) -> Customer | None:
    """The tenant's entry for `ref`, if any."""
    return await session.get(Customer, (tenant_id, ref), populate_existing=True)


async def find_customers(session: AsyncSession, *, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Customer]:
    """The entries of these (tenant, ref) keys that exist, in one statement read through the key."""
    if not keys:
        return {}
    tenants, refs = {tenant for tenant, _ in keys}, {ref for _, ref in keys}
    found = await session.scalars(
        select(Customer).where(Customer.tenant_id == any_(bindparam("tenants", list(tenants), type_=ARRAY(String))),
                               Customer.ref == any_(bindparam("refs", list(refs), type_=ARRAY(String))))
        .execution_options(populate_existing=True))
    return {key: customer for customer in found if (key := (customer.tenant_id, customer.ref)) in keys}


async def list_customers(session: AsyncSession, *, tenant_id: str, group: str | None, after: str | None,
                         limit: int) -> list[Customer]:
    """Up to `limit` entries of the tenant in ref order, after ref `after` (keyset pagination)."""
    query = select(Customer).where(Customer.tenant_id == tenant_id).order_by(Customer.ref).limit(limit)
    if group is not None:
        query = query.where(Customer.group_name == group)
    if after is not None:
        query = query.where(Customer.ref > after)
    return list((await session.scalars(query)).all())


async def delete_customer(session: AsyncSession, *, tenant_id: str, ref: str) -> bool:
    """Remove the tenant's entry for `ref`; False when there was none."""
    result = await session.execute(
        delete(Customer).where(Customer.tenant_id == tenant_id, Customer.ref == ref).returning(Customer.ref))
    return result.first() is not None

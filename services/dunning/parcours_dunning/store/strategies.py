"""Tenants' strategies (versioned), which customer group or customer follows which, and the
customer directory dunning keeps from the router's `customer.changed` events."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Boolean, DateTime, Integer, String, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parcours_contracts import CustomerChanged
from parcours_dunning.domain.calendar import known_zone
from parcours_dunning.domain.strategy import DEFAULT_STRATEGY, DEFAULT_STRATEGY_ID, Strategy, StrategySpec
from parcours_dunning.store.base import Base, among

AssignmentScope = str  # "group" | "customer" | "invoice"


class Customer(Base):
    __tablename__ = "customers"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    group: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(2))
    deleted: Mapped[bool] = mapped_column(Boolean, server_default="false")
    tags: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    timezone: Mapped[str | None] = mapped_column(String(64), doc="The directory's zone for the customer, if any.")
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), doc="occurred_at of the change applied")


class StrategyRow(Base):
    __tablename__ = "strategies"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StrategyVersion(Base):
    __tablename__ = "strategy_versions"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict] = mapped_column(JSONB, doc="The StrategySpec (name and steps) as validated.")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def strategy(self) -> Strategy:
        return Strategy(id=self.strategy_id, version=self.version, spec=StrategySpec.model_validate(self.spec))


class Assignment(Base):
    """Which strategy a customer group, a customer or one invoice follows."""

    __tablename__ = "assignments"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def apply_customer_change(session: AsyncSession, *, event: CustomerChanged) -> None:
    """Keep the latest state of each customer; an older change arriving late changes nothing."""
    values = dict(group=event.group, language=event.language, deleted=event.deleted, tags=list(event.tags),
                  timezone=_known_zone(event.timezone), changed_at=event.occurred_at)
    stmt = insert(Customer).values(tenant_id=event.tenant_id, customer_ref=event.customer_ref, **values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[Customer.tenant_id, Customer.customer_ref], set_=values,
        where=Customer.changed_at <= stmt.excluded.changed_at))


def _known_zone(tz: str | None) -> str | None:
    """A zone the directory names that this machine does not know is ignored (the service's applies)."""
    try:
        return known_zone(tz or None)
    except ValueError:
        return None


async def add_version(session: AsyncSession, *, tenant_id: str, strategy_id: str, spec: StrategySpec,
                      create: bool) -> StrategyVersion | None:
    """Store a new version (version 1 when `create`); None if `create` and the id exists, or not `create` and it does not."""
    if create:
        made = await session.execute(insert(StrategyRow).values(tenant_id=tenant_id, strategy_id=strategy_id,
                                                                latest_version=1)
                                     .on_conflict_do_nothing().returning(StrategyRow.latest_version))
    else:
        made = await session.execute(update(StrategyRow).where(
            StrategyRow.tenant_id == tenant_id, StrategyRow.strategy_id == strategy_id)
            .values(latest_version=StrategyRow.latest_version + 1).returning(StrategyRow.latest_version))
    version = made.scalar_one_or_none()
    if version is None:
        return None
    row = StrategyVersion(tenant_id=tenant_id, strategy_id=strategy_id, version=version,
                          spec=spec.model_dump(mode="json"))
    session.add(row)
    await session.flush()
    return row


async def get_version(session: AsyncSession, *, tenant_id: str, strategy_id: str,
                      version: int | None = None) -> Strategy | None:
    """A version of the tenant's strategy (the latest by default); the built-in default is every tenant's."""
    if strategy_id == DEFAULT_STRATEGY_ID:
        return DEFAULT_STRATEGY if version in (None, DEFAULT_STRATEGY.version) else None
    query = select(StrategyVersion).where(StrategyVersion.tenant_id == tenant_id,
                                          StrategyVersion.strategy_id == strategy_id)
    query = query.where(StrategyVersion.version == version) if version is not None else \
        query.order_by(StrategyVersion.version.desc()).limit(1)
    row = (await session.execute(query)).scalar_one_or_none()
    return row.strategy() if row else None


async def list_versions(session: AsyncSession, *, tenant_id: str, strategy_id: str) -> list[StrategyVersion]:
    return list((await session.scalars(select(StrategyVersion).where(
        StrategyVersion.tenant_id == tenant_id, StrategyVersion.strategy_id == strategy_id)
        .order_by(StrategyVersion.version))).all())


async def list_latest(session: AsyncSession, *, tenant_id: str) -> list[Strategy]:
    """Every strategy of the tenant at its latest version, the built-in default first."""
    rows = (await session.scalars(select(StrategyVersion).join(StrategyRow, (
        StrategyRow.tenant_id == StrategyVersion.tenant_id) & (StrategyRow.strategy_id == StrategyVersion.strategy_id)
        & (StrategyRow.latest_version == StrategyVersion.version))
        .where(StrategyVersion.tenant_id == tenant_id).order_by(StrategyVersion.strategy_id))).all()
    return [DEFAULT_STRATEGY] + [row.strategy() for row in rows]


async def assign(session: AsyncSession, *, tenant_id: str, scope: AssignmentScope, ref: str, strategy_id: str) -> None:
    stmt = insert(Assignment).values(tenant_id=tenant_id, scope=scope, ref=ref, strategy_id=strategy_id)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[Assignment.tenant_id, Assignment.scope, Assignment.ref],
        set_={"strategy_id": stmt.excluded.strategy_id, "assigned_at": func.now()}))


async def choose_strategy(session: AsyncSession, *, tenant_id: str, invoice_id: UUID, customer_ref: str) -> Strategy:
    """The strategy an invoice follows: its own assignment, else its customer's, else its
    customer's group's, else the built-in default; at that strategy's latest version."""
    return (await choose_strategies(session, invoices=[(tenant_id, invoice_id, customer_ref)]))[(tenant_id, invoice_id)]


async def choose_strategies(session: AsyncSession, *,
                            invoices: list[tuple[str, UUID, str]]) -> dict[tuple[str, UUID], Strategy]:
    """choose_strategy for many invoices (tenant, invoice id, customer ref): customers and
    assignments read in one statement each, each strategy's latest version once."""
    customers = {(c.tenant_id, c.customer_ref): c for c in (await session.scalars(select(Customer).where(
        among(Customer.tenant_id, Customer.customer_ref, {(t, ref) for t, _, ref in invoices})))).all()}
    wanted: dict[tuple[str, UUID], list[tuple[str, str]]] = {}
    for tenant_id, invoice_id, customer_ref in invoices:
        keys = wanted[(tenant_id, invoice_id)] = [("invoice", str(invoice_id)), ("customer", customer_ref)]
        customer = customers.get((tenant_id, customer_ref))
        if customer is not None and customer.group and not customer.deleted:
            keys.append(("group", customer.group))
    refs = {(tenant_id, ref) for (tenant_id, _), keys in wanted.items() for _, ref in keys}
    assigned = {(a.tenant_id, a.scope, a.ref): a.strategy_id for a in (await session.scalars(select(Assignment).where(
        among(Assignment.tenant_id, Assignment.ref, refs)))).all()}
    versions: dict[tuple[str, str], Strategy | None] = {}
    out = {}
    for (tenant_id, invoice_id), keys in wanted.items():
        out[(tenant_id, invoice_id)] = DEFAULT_STRATEGY
        for scope, ref in keys:
            if (strategy_id := assigned.get((tenant_id, scope, ref))) is None:
                continue
            if (tenant_id, strategy_id) not in versions:
                versions[(tenant_id, strategy_id)] = await get_version(session, tenant_id=tenant_id,
                                                                       strategy_id=strategy_id)
            if (strategy := versions[(tenant_id, strategy_id)]) is not None:
                out[(tenant_id, invoice_id)] = strategy
                break
    return out

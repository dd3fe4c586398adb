"""Strategies (each write a new version), their assignment to customer groups, customers
and single invoices, and the simulator (★): the dated plan of what a strategy will do."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from parcours_runtime.problems import Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork

from parcours_dunning.domain.facts import InvoiceFacts, Signal
from parcours_dunning.domain.planner import simulate
from parcours_dunning.domain.strategy import DEFAULT_STRATEGY_ID, Milestone, Step, Strategy, StrategySpec
from parcours_dunning.domain.calendar import known_zone
from parcours_dunning.planning import CREDIT_NOTE, facts_of, is_credit_note
from parcours_dunning.store.invoices import get_invoice
from parcours_dunning.store.strategies import add_version, assign, get_version, list_latest, list_versions

router = APIRouter(tags=["strategies"])
SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"

MAX_VERSION = 2**31 - 1  # the column is a PostgreSQL integer


class StrategyCreate(StrategySpec):
    id: str = Field(pattern=SLUG, description="The tenant's name for it; `default` is the built-in strategy.")


class StrategyRead(BaseModel):
    id: str
    version: int
    name: str
    steps: list[Step]
    milestones: list[Milestone] = Field(default_factory=list)
    versions: list[int] = Field(default_factory=list)

    @classmethod
    def of(cls, strategy: Strategy, versions: list[int] | None = None) -> "StrategyRead":
        return cls(id=strategy.id, version=strategy.version, name=strategy.spec.name, steps=strategy.steps,
                   milestones=strategy.spec.milestones, versions=versions or [strategy.version])


async def _read(session, tenant_id: str, strategy_id: str) -> StrategyRead:
    versions = [v.version for v in await list_versions(session, tenant_id=tenant_id, strategy_id=strategy_id)]
    latest = await get_version(session, tenant_id=tenant_id, strategy_id=strategy_id)
    if latest is None:
        raise Problem(404, f"No strategy {strategy_id!r} for this tenant.")
    return StrategyRead.of(latest, versions or None)


@router.post("/v1/strategies", response_model=StrategyRead, status_code=201, summary="Create a strategy (version 1)")
async def create_strategy(body: StrategyCreate, request: Request, tenant: Tenant = Depends(authenticate)) -> StrategyRead:
    if body.id == DEFAULT_STRATEGY_ID:
        raise Problem(409, "`default` is the built-in strategy; choose another id.")
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        spec = StrategySpec.model_validate(body.model_dump(exclude={"id"}))
        if await add_version(uow.session, tenant_id=tenant.id, strategy_id=body.id, spec=spec, create=True) is None:
            raise Problem(409, f"Strategy {body.id!r} exists; POST /v1/strategies/{body.id}/versions adds a version.")
        await uow.commit()
        return await _read(uow.session, tenant.id, body.id)


@router.post("/v1/strategies/{strategy_id}/versions", response_model=StrategyRead, status_code=201,
             summary="Add a version; invoices already planned keep the version they follow")
async def add_strategy_version(strategy_id: str, body: StrategySpec, request: Request,
                               tenant: Tenant = Depends(authenticate)) -> StrategyRead:
    if strategy_id == DEFAULT_STRATEGY_ID:
        raise Problem(409, "The built-in default strategy cannot be changed; create your own and assign it.")
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        if await add_version(uow.session, tenant_id=tenant.id, strategy_id=strategy_id, spec=body, create=False) is None:
            raise Problem(404, f"No strategy {strategy_id!r} for this tenant.")
        await uow.commit()
        return await _read(uow.session, tenant.id, strategy_id)


@router.get("/v1/strategies", response_model=list[StrategyRead], summary="Every strategy, at its latest version")
async def get_strategies(request: Request, tenant: Tenant = Depends(authenticate)) -> list[StrategyRead]:
    async with request.app.state.ctx.sessions() as session:
        return [StrategyRead.of(s) for s in await list_latest(session, tenant_id=tenant.id)]


@router.get("/v1/strategies/{strategy_id}", response_model=StrategyRead, summary="A strategy's latest version")
async def get_strategy(strategy_id: str, request: Request, tenant: Tenant = Depends(authenticate)) -> StrategyRead:
    async with request.app.state.ctx.sessions() as session:
        return await _read(session, tenant.id, strategy_id)


@router.get("/v1/strategies/{strategy_id}/versions/{version}", response_model=StrategyRead,
            summary="One version of a strategy")
async def get_strategy_version(strategy_id: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], request: Request,
                               tenant: Tenant = Depends(authenticate)) -> StrategyRead:
    async with request.app.state.ctx.sessions() as session:
        strategy = await get_version(session, tenant_id=tenant.id, strategy_id=strategy_id, version=version)
    if strategy is None:
        raise Problem(404, f"No version {version} of strategy {strategy_id!r} for this tenant.")
    return StrategyRead.of(strategy)


class AssignmentWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy_id: str = Field(pattern=SLUG)


class AssignmentRead(BaseModel):
    scope: Literal["group", "customer", "invoice"]
    ref: str
    strategy_id: str


async def _assign(request: Request, tenant: Tenant, scope: str, ref: str, body: AssignmentWrite) -> AssignmentRead:
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        if await get_version(uow.session, tenant_id=tenant.id, strategy_id=body.strategy_id) is None:
            raise Problem(422, f"No strategy {body.strategy_id!r} for this tenant.",
                          errors=[field_error(["strategy_id"], "unknown strategy", "unknown")])
        if scope == "invoice" and await get_invoice(uow.session, tenant_id=tenant.id, invoice_id=UUID(ref)):
            raise Problem(409, "The invoice is already planned with its strategy; pause or exclude it instead.")
        await assign(uow.session, tenant_id=tenant.id, scope=scope, ref=ref, strategy_id=body.strategy_id)
        await uow.commit()
    return AssignmentRead(scope=scope, ref=ref, strategy_id=body.strategy_id)


@router.put("/v1/assignments/groups/{group}", response_model=AssignmentRead, tags=["assignments"],
            summary="The strategy a customer group's new invoices follow")
async def assign_group(group: str, body: AssignmentWrite, request: Request,
                       tenant: Tenant = Depends(authenticate)) -> AssignmentRead:
    return await _assign(request, tenant, "group", group[:64], body)


@router.put("/v1/assignments/customers/{customer_ref}", response_model=AssignmentRead, tags=["assignments"],
            summary="The strategy a customer's new invoices follow (before its group's)")
async def assign_customer(customer_ref: str, body: AssignmentWrite, request: Request,
                          tenant: Tenant = Depends(authenticate)) -> AssignmentRead:
    return await _assign(request, tenant, "customer", customer_ref[:64], body)


@router.put("/v1/assignments/invoices/{invoice_id}", response_model=AssignmentRead, tags=["assignments"],
            summary="The strategy one invoice follows (before its customer's); only before it is received")
async def assign_invoice(invoice_id: UUID, body: AssignmentWrite, request: Request,
                         tenant: Tenant = Depends(authenticate)) -> AssignmentRead:
    return await _assign(request, tenant, "invoice", str(invoice_id), body)


SimEventKind = Literal["dispatched", "acked", "viewed", "failed", "bounced", "disputed", "suspended", "approved",
                       "refused", "payment_transmitted", "cashed", "paid", "promise", "pause", "resume", "exclude"]
_LIFECYCLE = {"disputed": 207, "suspended": 208, "approved": 205, "refused": 210, "payment_transmitted": 211,
              "cashed": 212}


class SimEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime
    kind: SimEventKind
    open_amount: Decimal | None = Field(default=None, description="paid: what remains due (omitted: paid in full).")
    promised_on: date | None = Field(default=None, description="promise: the promised date.")

    @model_validator(mode="after")
    def _fields_of_kind(self):
        if self.kind == "promise" and self.promised_on is None:
            raise ValueError("a promise needs promised_on")
        return self

    def signal(self) -> Signal:
        if self.kind in _LIFECYCLE:
            return Signal(at=self.at, kind="lifecycle", code=_LIFECYCLE[self.kind], status=self.kind)
        if self.kind in ("failed", "bounced"):
            return Signal(at=self.at, kind="delivery_failed", detail=f"assumed {self.kind}")
        if self.kind == "paid":
            remaining = self.open_amount if self.open_amount is not None else Decimal(0)
            return Signal(at=self.at, kind="payment", open_amount=remaining, fully_paid=remaining <= 0)
        if self.kind == "promise":
            return Signal(at=self.at, kind="promise", promised_on=self.promised_on)
        return Signal(at=self.at, kind=self.kind)


# A plan runs months past the due date: far dates would overflow the calendar arithmetic.
SimDate = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]


class SimInvoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issue_date: SimDate
    due_date: SimDate
    amount: Decimal = Field(gt=0)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    dispatched_at: AwareDatetime | None = Field(
        default=None, description="Omitted (and no dispatched event): dispatched on the issue date.")
    customer_tags: list[str] = Field(default_factory=list)
    type_code: Literal["380", "381", "384", "389"] = Field(default="380", description="381: a credit note, never dunned.")
    timezone: str | None = Field(default=None, description="The customer's IANA zone; omitted: the service's.")

    _known_zone = field_validator("timezone")(lambda cls, value: known_zone(value))


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invoice: SimInvoice | None = None
    invoice_id: UUID | None = Field(default=None, description="Or an invoice dunning knows, with its facts so far.")
    events: list[SimEvent] = Field(default_factory=list, max_length=200)
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION, description="Omitted: the latest version.")
    draft: StrategySpec | None = Field(default=None, description=(
        "Steps not saved yet, simulated instead of a stored version (an editor's preview); the answer's "
        "version is 0. The strategy need not exist yet."))
    until: SimDate | None = Field(default=None, description="Omitted: 120 days after the due date.")

    @model_validator(mode="after")
    def _one_invoice(self):
        if (self.invoice is None) == (self.invoice_id is None):
            raise ValueError("give either invoice or invoice_id")
        return self


class PenaltiesRead(BaseModel):
    indemnity: Decimal
    interest: Decimal
    rate: Decimal
    days_late: int


class SimulatedStepRead(BaseModel):
    step: str
    action: str
    outcome: Literal["reminder", "task", "stop", "handover", "skipped", "waiting"]
    at: datetime | None
    planned_at: datetime | None
    reason: str
    penalties: PenaltiesRead | None


class SimulationRead(BaseModel):
    strategy: str
    version: int
    steps: list[SimulatedStepRead]
    note: str | None = Field(default=None, description="Why there is no plan at all (a credit note), if so.")


@router.post("/v1/strategies/{strategy_id}/simulate", response_model=SimulationRead,
             summary="The dated plan of what this strategy would do to an invoice, given assumed events, and why")
async def simulate_strategy(strategy_id: str, body: SimulateRequest, request: Request,
                            tenant: Tenant = Depends(authenticate)) -> SimulationRead:
    ctx = request.app.state.ctx
    policy = ctx.extras["policy"]
    async with ctx.sessions() as session:
        if body.draft is not None:
            strategy = Strategy(id=strategy_id, version=0, spec=body.draft)
        else:
            strategy = await get_version(session, tenant_id=tenant.id, strategy_id=strategy_id, version=body.version)
        if strategy is None:
            raise Problem(404, f"No strategy {strategy_id!r}{f' version {body.version}' if body.version else ''} "
                               "for this tenant.")
        if body.invoice_id is not None:
            invoice = await get_invoice(session, tenant_id=tenant.id, invoice_id=body.invoice_id)
            if invoice is None:
                raise Problem(404, f"No invoice {body.invoice_id} is known to dunning for this tenant.")
            facts = await facts_of(session, invoice)
            strategy = strategy.with_custom_steps([Step.model_validate(s) for s in invoice.custom_steps or []])
            credit_note = is_credit_note(invoice)
        else:
            facts = _facts_of(body.invoice, policy)
            credit_note = body.invoice.type_code == CREDIT_NOTE
    if credit_note:
        return SimulationRead(strategy=strategy.id, version=strategy.version, steps=[],
                              note="credit note (type 381): money owed to the customer, nothing to dun")
    if facts.due_date < facts.issue_date:
        raise Problem(422, "The due date comes before the issue date.",
                      errors=[field_error(["invoice", "due_date"], "before issue_date")])
    facts = facts.with_signals(*(event.signal() for event in body.events))
    tz = policy.for_zone(facts.timezone).calendar.tz
    start = datetime.combine(facts.issue_date, time(0), tzinfo=tz)
    until = datetime.combine(body.until or facts.due_date + timedelta(days=120), time(23, 59), tzinfo=tz)
    steps = simulate(strategy, facts, policy, start=start, until=until)
    return SimulationRead(strategy=strategy.id, version=strategy.version, steps=[SimulatedStepRead(
        step=s.step, action=s.action, outcome=s.outcome, at=s.at, planned_at=s.planned_at, reason=s.reason,
        penalties=PenaltiesRead(indemnity=s.penalties.indemnity, interest=s.penalties.interest,
                                rate=s.penalties.rate, days_late=s.penalties.days_late) if s.penalties else None,
    ) for s in steps])


def _facts_of(invoice: SimInvoice, policy) -> InvoiceFacts:
    dispatched = invoice.dispatched_at or policy.for_zone(invoice.timezone).calendar.opening_of(invoice.issue_date)
    return InvoiceFacts(issue_date=invoice.issue_date, due_date=invoice.due_date, amount=invoice.amount,
                        currency=invoice.currency, customer_tags=frozenset(invoice.customer_tags),
                        signals=(Signal(at=dispatched, kind="dispatched"),), timezone=invoice.timezone)

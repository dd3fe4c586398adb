"""Dunning strategies: a list of steps, each placed relative to an anchor of the invoice's
life, fired on conditions, doing one action. Tenants write them as JSON; these models
validate them, and the built-in default is the French B2B strategy."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Anchor = Literal["issue_date", "dispatch", "due_date", "last_reminder", "promised_date"]
ConditionKind = Literal["receipt_not_established", "not_viewed", "unpaid", "amount_gte", "open_balance_gte",
                        "not_disputed", "customer_tag"]
TaskKind = Literal["call", "letter", "escalate", "formal_notice", "review"]
_NEEDS_VALUE = {"amount_gte", "open_balance_gte", "customer_tag"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Spec):
    kind: ConditionKind
    value: Decimal | str | None = Field(default=None, description="The threshold (amount_gte, open_balance_gte) or tag.")

    @model_validator(mode="after")
    def _value_when_needed(self):
        if self.kind in _NEEDS_VALUE and self.value is None:
            raise ValueError(f"condition {self.kind} needs a value")
        if self.kind in ("amount_gte", "open_balance_gte"):
            try:
                object.__setattr__(self, "value", Decimal(str(self.value)))
            except ArithmeticError:
                raise ValueError(f"condition {self.kind} needs a decimal amount") from None
        return self


class ReminderAction(_Spec):
    kind: Literal["reminder"] = "reminder"
    template: str = Field(min_length=1, max_length=64)
    channel: str | None = Field(default=None, max_length=64, description="None: the customer's preferred channel.")


class TaskAction(_Spec):
    kind: Literal["task"] = "task"
    task: TaskKind


class StopAction(_Spec):
    kind: Literal["stop"] = "stop"


Action = Annotated[ReminderAction | TaskAction | StopAction, Field(discriminator="kind")]


class Repeat(_Spec):
    every_days: int = Field(ge=1, le=365)
    max: int = Field(ge=1, le=12, description="Further occurrences after the first.")


class Step(_Spec):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    anchor: Anchor
    offset_days: int = Field(default=0, ge=-365, le=365, description="Negative: before the anchor.")
    days: Literal["calendar", "business"] = "calendar"
    conditions: list[Condition] = Field(default_factory=list)
    action: Action
    repeat: Repeat | None = None
    penalties: bool = Field(default=False, description="A curative step: late-payment penalties are computed and stated.")
    description: str = Field(default="", max_length=200)


class StrategySpec(_Spec):
    """What a tenant writes: a strategy version's content."""

    name: str = Field(min_length=1, max_length=200)
    steps: list[Step] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _unique_step_names(self):
        names = [step.name for step in self.steps]
        if len(names) != len(set(names)):
            raise ValueError("step names must be unique within a strategy")
        return self


class Strategy(_Spec):
    """A strategy version an invoice follows."""

    id: str
    version: int
    spec: StrategySpec

    @property
    def steps(self) -> list[Step]:
        return self.spec.steps

    def step(self, name: str) -> Step:
        for step in self.spec.steps:
            if step.name == name:
                return step
        raise KeyError(f"strategy {self.id!r} has no step {name!r}")


DEFAULT_STRATEGY_ID = "default"

FRENCH_B2B = StrategySpec(
    name="French B2B (built-in)",
    steps=[
        # J-0: the invoice went out; two business days later, no proof of receipt means the
        # customer may not have it: remind at once, long before the due date (★).
        Step(name="pre_due", anchor="dispatch", offset_days=2, days="business",
             conditions=[Condition(kind="receipt_not_established"), Condition(kind="unpaid")],
             action=ReminderAction(template="receipt_check"), description="receipt check after dispatch"),
        Step(name="preventive", anchor="due_date", offset_days=-5, conditions=[Condition(kind="unpaid")],
             action=ReminderAction(template="preventive"), description="5 days before the due date"),
        Step(name="curative_1", anchor="due_date", offset_days=3,
             conditions=[Condition(kind="unpaid"), Condition(kind="not_disputed")],
             action=ReminderAction(template="curative"), penalties=True, description="3 days past due"),
        Step(name="curative_2", anchor="due_date", offset_days=10,
             conditions=[Condition(kind="unpaid"), Condition(kind="not_disputed")],
             action=ReminderAction(template="curative_firm"), penalties=True, description="10 days past due"),
        Step(name="formal_notice", anchor="due_date", offset_days=20,
             conditions=[Condition(kind="unpaid"), Condition(kind="not_disputed")],
             action=TaskAction(task="formal_notice"), penalties=True, description="mise en demeure, 20 days past due"),
    ],
)

DEFAULT_STRATEGY = Strategy(id=DEFAULT_STRATEGY_ID, version=1, spec=FRENCH_B2B)

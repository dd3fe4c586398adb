"""Dunning strategies: a list of steps, each placed relative to an anchor of the invoice's
life, fired on conditions, doing one action. Tenants write them as JSON; these models
validate them, and the built-in default is the French B2B strategy."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Anchor = Literal["issue_date", "dispatch", "receipt", "due_date", "last_reminder", "promised_date"]
ConditionKind = Literal["receipt_not_established", "not_viewed", "unpaid", "amount_gte", "open_balance_gte",
                        "not_disputed", "customer_tag", "status_not_reached"]
TaskKind = Literal["call", "letter", "escalate", "formal_notice", "review", "collection"]
Tone = Literal["gentle", "firm", "final"]
TONES: tuple[Tone, ...] = ("gentle", "firm", "final")
_NEEDS_VALUE = {"amount_gte", "open_balance_gte", "customer_tag", "status_not_reached"}
LIFECYCLE_CODES = range(200, 214)


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
        if self.kind == "status_not_reached":
            object.__setattr__(self, "value", ",".join(str(code) for code in _codes(str(self.value))))
        return self

    @property
    def codes(self) -> frozenset[int]:
        """status_not_reached: the lifecycle codes any of which meets the expectation."""
        return frozenset(_codes(str(self.value)))


def _codes(value: str) -> list[int]:
    try:
        codes = sorted({int(part) for part in value.replace(" ", ",").split(",") if part})
    except ValueError:
        raise ValueError("status_not_reached needs lifecycle codes, e.g. \"205\" or \"205,211\"") from None
    if not codes or any(code not in LIFECYCLE_CODES for code in codes):
        raise ValueError("status_not_reached needs lifecycle codes between 200 and 213")
    return codes


class ReminderAction(_Spec):
    kind: Literal["reminder"] = "reminder"
    template: str = Field(min_length=1, max_length=64)
    channel: str | None = Field(default=None, max_length=64, description="None: the customer's preferred channel.")
    tone: Tone | None = Field(default=None, description="How insistent it sounds; None: by its rank among the "
                                                        "strategy's reminder steps (gentle, firm, then final).")


class TaskAction(_Spec):
    kind: Literal["task"] = "task"
    task: TaskKind


class StopAction(_Spec):
    kind: Literal["stop"] = "stop"


class HandoverAction(_Spec):
    """Hand the invoice over to collection: a `collection` task for the agency, and dunning ends."""

    kind: Literal["handover"] = "handover"
    agency: str | None = Field(default=None, max_length=200, description="The collection agency or the litigation team.")


Action = Annotated[ReminderAction | TaskAction | StopAction | HandoverAction, Field(discriminator="kind")]
ENDING_ACTIONS = ("stop", "handover")


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


class Milestone(_Spec):
    """A jalon: lifecycle statuses expected by a date (e.g. approved within 15 days of receipt).
    Missed — none of `expect` reached by then — it fires its own action."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    expect: list[int] = Field(min_length=1, max_length=14, description="Lifecycle codes (200–213), any of which meets it.")
    anchor: Anchor = "receipt"
    within_days: int = Field(ge=0, le=365)
    days: Literal["calendar", "business"] = "calendar"
    conditions: list[Condition] = Field(default_factory=list, description="Further conditions for the action.")
    action: Action
    description: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _known_codes(self):
        if any(code not in LIFECYCLE_CODES for code in self.expect):
            raise ValueError("expect holds lifecycle codes between 200 and 213")
        return self

    def step(self) -> Step:
        """The step it becomes: its date, `status_not_reached` and its own conditions, its action."""
        codes = ",".join(str(code) for code in sorted(set(self.expect)))
        return Step(name=self.name, anchor=self.anchor, offset_days=self.within_days, days=self.days,
                    conditions=[Condition(kind="status_not_reached", value=codes), *self.conditions],
                    action=self.action, description=self.description or (
                        f"milestone {self.name}: status {codes} expected within {self.within_days} {self.days} days "
                        f"of {self.anchor.replace('_', ' ')}"))


class StrategySpec(_Spec):
    """What a tenant writes: a strategy version's content."""

    name: str = Field(min_length=1, max_length=200)
    steps: list[Step] = Field(min_length=1, max_length=30)
    milestones: list[Milestone] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _unique_step_names(self):
        names = [step.name for step in self.steps] + [m.name for m in self.milestones]
        if len(names) != len(set(names)):
            raise ValueError("step and milestone names must be unique within a strategy")
        return self


class Strategy(_Spec):
    """A strategy version an invoice follows, with the invoice's own custom steps if any.

    The strategy's steps form its main line, in order: a later one sent makes an earlier one
    pointless. Milestones and custom steps stand aside: each fires on its own account."""

    id: str
    version: int
    spec: StrategySpec
    custom_steps: list[Step] = Field(default_factory=list)

    @property
    def steps(self) -> list[Step]:
        return self.spec.steps

    @property
    def side_steps(self) -> list[Step]:
        return [m.step() for m in self.spec.milestones] + list(self.custom_steps)

    def with_custom_steps(self, steps: list[Step]) -> "Strategy":
        return self.model_copy(update={"custom_steps": list(steps)}) if steps else self

    def step(self, name: str) -> Step:
        for step in self.spec.steps + self.side_steps:
            if step.name == name:
                return step
        raise KeyError(f"strategy {self.id!r} has no step {name!r}")

    def tone_of(self, step: Step) -> Tone:
        """The step's own tone, else by its rank among the main line's reminders (side steps: gentle)."""
        if isinstance(step.action, ReminderAction) and step.action.tone:
            return step.action.tone
        reminders = [s.name for s in self.spec.steps if isinstance(s.action, ReminderAction)]
        rank = reminders.index(step.name) if step.name in reminders else 0
        return TONES[min(rank, len(TONES) - 1)]


DEFAULT_STRATEGY_ID = "default"

FRENCH_B2B = StrategySpec(
    name="French B2B (built-in)",
    steps=[
        # J-0: the invoice went out; two business days later, no proof of receipt means the
        # customer may not have it: remind at once, long before the due date (★).
        Step(name="pre_due", anchor="dispatch", offset_days=2, days="business",
             conditions=[Condition(kind="receipt_not_established"), Condition(kind="unpaid")],
             action=ReminderAction(template="receipt_check", tone="gentle"), description="receipt check after dispatch"),
        Step(name="preventive", anchor="due_date", offset_days=-5, conditions=[Condition(kind="unpaid")],
             action=ReminderAction(template="preventive", tone="gentle"), description="5 days before the due date"),
        Step(name="curative_1", anchor="due_date", offset_days=3,
             conditions=[Condition(kind="unpaid"), Condition(kind="not_disputed")],
             action=ReminderAction(template="curative", tone="firm"), penalties=True, description="3 days past due"),
        Step(name="curative_2", anchor="due_date", offset_days=10,
             conditions=[Condition(kind="unpaid"), Condition(kind="not_disputed")],
             action=ReminderAction(template="curative_firm", tone="final"), penalties=True,
             description="10 days past due"),
        Step(name="formal_notice", anchor="due_date", offset_days=20,
             conditions=[Condition(kind="unpaid"), Condition(kind="not_disputed")],
             action=TaskAction(task="formal_notice"), penalties=True, description="mise en demeure, 20 days past due"),
    ],
)

DEFAULT_STRATEGY = Strategy(id=DEFAULT_STRATEGY_ID, version=1, spec=FRENCH_B2B)

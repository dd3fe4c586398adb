"""Dunning settings (env prefix PARCOURS_DUNNING_)."""

from datetime import date, time
from decimal import Decimal

import holidays
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from parcours_runtime.settings import UnhurriedServiceSettings

from parcours_dunning.domain.calendar import known_zone

DEV_ADMIN_TOKEN = "dev-admin-token"

# ECB main refinancing operations rate (percent), from the day it took effect. French law applies
# the rate in force on 1 January / 1 July of the half-year; extend the table as the ECB moves.
ECB_RATES = {
    date(2023, 9, 20): Decimal("4.50"),
    date(2024, 6, 12): Decimal("4.25"),
    date(2024, 9, 18): Decimal("3.65"),
    date(2024, 10, 23): Decimal("3.40"),
    date(2024, 12, 18): Decimal("3.15"),
    date(2025, 2, 5): Decimal("2.90"),
    date(2025, 3, 12): Decimal("2.65"),
    date(2025, 4, 23): Decimal("2.40"),
    date(2025, 6, 11): Decimal("2.15"),
}


class Settings(UnhurriedServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_DUNNING_", extra="ignore")

    http_port: int = 8105
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours_dunning"
    consumer_batch_size: int = Field(default=125, ge=1, description=(
        "Events taken per poll. At a lower CPU priority dunning catches up after a burst in full polls, and what a "
        "poll holds at once is a high-water mark the process keeps: at 20 000 invoices 500 peaked at 146 MB, 250 "
        "at 138–147, 125 at 138 (catching up 22 s after the burst rather than 18)."))
    time_travel: bool = Field(
        default=False,
        description="Run on a settable clock and expose /v1/admin/clock and /v1/admin/scheduler/run (demos, tests).")
    admin_token: str = Field(default=DEV_ADMIN_TOKEN, description="Bearer token of the time-travel admin routes.")
    console_token: SecretStr | None = Field(
        default=None, description="The portal's token: with X-Parcours-Tenant it acts for that tenant on this API "
                                  "(the console's agenda, holds and strategy editor); unset, only API keys do.")
    tick_seconds: float = Field(default=30, gt=0, description="Period of the reminder scheduler.")
    scheduler_batch_size: int = Field(default=100, ge=1, description="Invoices decided per scheduler transaction.")
    holiday_country: str = Field(default="FR", description="Whose public holidays are not business days (ISO 3166).")
    timezone: str = Field(default="Europe/Paris", description="Time zone of the sending window and of step dates.")
    send_window_start: time = Field(default=time(8), description="Reminders go out from this local time…")
    send_window_end: time = Field(default=time(18), description="…until this one, on `send_days` that are not holidays.")
    send_days: list[int] = Field(default=[0, 1, 2, 3, 4], description="Weekdays reminders may go out (0 = Monday).")
    promise_grace_days: int = Field(default=3, ge=0, le=90, description="A promise to pay pauses until its date plus this.")
    ecb_rates: dict[date, Decimal] = Field(default_factory=lambda: dict(ECB_RATES),
                                           description="ECB refinancing rate (%) by the date it took effect.")
    penalty_margin_points: Decimal = Field(default=Decimal(10), ge=0, description="Points added to the ECB rate.")
    recovery_indemnity: Decimal = Field(default=Decimal(40), ge=0, description="Fixed indemnity per late invoice (€).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        if value not in holidays.list_supported_countries():
            raise ValueError(f"no public holidays known for country {value!r}")
        return value

    @field_validator("send_days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value or any(day not in range(7) for day in value):
            raise ValueError("send_days are weekdays 0 (Monday) to 6, at least one")
        return sorted(set(value))

    @model_validator(mode="after")
    def _refuse_unsafe_production(self):
        if self.send_window_end <= self.send_window_start:
            raise ValueError("send_window_end must come after send_window_start")
        if not self.ecb_rates:
            raise ValueError("ecb_rates needs at least one rate")
        if self.is_production and self.time_travel:
            raise ValueError("time_travel must not be enabled in production")
        self.refuse_dev_secret("admin_token", self.admin_token, DEV_ADMIN_TOKEN)
        return self

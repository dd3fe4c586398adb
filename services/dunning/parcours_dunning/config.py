"""Dunning settings (env prefix PARCOURS_DUNNING_)."""

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from parcours_runtime.settings import ServiceSettings

DEV_ADMIN_TOKEN = "dev-admin-token"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_DUNNING_", extra="ignore")

    http_port: int = 8105
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours_dunning"
    time_travel: bool = Field(
        default=False,
        description="Run on a settable clock and expose /v1/admin/clock and /v1/admin/scheduler/run (demos, tests).")
    admin_token: str = Field(default=DEV_ADMIN_TOKEN, description="Bearer token of the time-travel admin routes.")
    tick_seconds: float = Field(default=30, gt=0, description="Period of the reminder scheduler.")
    reminder_hour_utc: int = Field(default=8, ge=0, le=23, description="Hour (UTC) at which every step fires on its date.")
    scheduler_batch_size: int = Field(default=100, ge=1, description="Invoices decided per scheduler transaction.")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self):
        if self.is_production and self.time_travel:
            raise ValueError("time_travel must not be enabled in production")
        self.refuse_dev_secret("admin_token", self.admin_token, DEV_ADMIN_TOKEN)
        return self

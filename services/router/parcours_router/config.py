"""Router settings (env prefix PARCOURS_ROUTER_; lists are JSON, e.g. PARCOURS_ROUTER_CHANNELS='["email_link"]')."""

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from parcours_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_ROUTER_", extra="ignore")

    http_port: int = 8102
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours_router"
    channels: list[str] = Field(
        default=["email_link", "email_attachment"], min_length=1,
        description="Names of the channels the platform offers; the adapters live in the channels service.")

    @field_validator("channels")
    @classmethod
    def _distinct_names(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value]
        if any(not name for name in names):
            raise ValueError("channel names must not be blank")
        if len(set(names)) != len(names):
            raise ValueError("channel names must be distinct")
        return names

"""Tracker settings (env prefix PARCOURS_TRACKER_; lists and dicts are given as JSON)."""

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from parcours_runtime.settings import ServiceSettings

DEV_LINK_SECRET = "dev-link-secret"
DEV_ACK_SECRET = "dev-ack-secret"
MAX_ACTIVE_ACK_SECRETS = 2


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_TRACKER_", extra="ignore")

    http_port: int = 8104
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours_tracker"
    public_url: str = Field(default="http://127.0.0.1:8104",
                            description="Base URL recipients reach the tracker at; channels builds its links on it.")
    link_secrets: list[str] = Field(
        default_factory=lambda: [DEV_LINK_SECRET], min_length=1,
        description="Tracked-link secrets. The tracker only verifies, so all are accepted: list the new and "
                    "the old one while rotating (channels signs with the new one).")
    ack_secrets: dict[str, list[str]] = Field(
        default_factory=lambda: {channel: [DEV_ACK_SECRET] for channel in ("edi", "ap_platform", "chorus_pro")},
        description="Per partner channel, the 1 or 2 active webhook secrets (two while rotating).")
    ack_tolerance_seconds: int = Field(default=300, ge=1, description="Accepted clock gap of a signed ack.")
    ack_max_body_bytes: int = Field(default=64 * 1024, ge=256)

    @model_validator(mode="after")
    def _check_secrets(self):
        for secret in self.link_secrets:
            self.refuse_dev_secret("link_secrets", secret, DEV_LINK_SECRET)
        for channel, secrets in self.ack_secrets.items():
            if not 1 <= len(secrets) <= MAX_ACTIVE_ACK_SECRETS:
                raise ValueError(f"ack_secrets[{channel}] must hold 1 or {MAX_ACTIVE_ACK_SECRETS} secrets")
            if any(not secret for secret in secrets):
                raise ValueError(f"ack_secrets[{channel}] holds an empty secret")
            for secret in secrets:
                self.refuse_dev_secret(f"ack_secrets[{channel}]", secret, DEV_ACK_SECRET)
        if any(not secret for secret in self.link_secrets):
            raise ValueError("link_secrets holds an empty secret")
        return self

"""Chorus Pro settings (env prefix PARCOURS_CHANNELS_CHORUS_PRO_): PISTE application and technical account."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChorusProSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_CHANNELS_CHORUS_PRO_", extra="ignore")

    oauth_url: str = Field(default="https://sandbox-oauth.piste.gouv.fr/api/oauth/token", pattern=r"^https?://",
                           description="PISTE's OAuth2 token endpoint.")
    api_url: str = Field(default="https://sandbox-api.piste.gouv.fr", pattern=r"^https?://")
    client_id: str = Field(default="", description="The PISTE application's OAuth2 client id.")
    client_secret: SecretStr = SecretStr("")
    login: str = Field(default="", description="The Chorus Pro technical account (sent in cpro-account).")
    password: SecretStr = SecretStr("")
    timeout_seconds: float = Field(default=30, gt=0)
    poll_seconds: float = Field(default=60, gt=0, description="How often the follow-up job looks for due submissions.")
    first_check_seconds: float = Field(default=60, gt=0, description="First follow-up after a deposit; doubles after.")
    longest_check_seconds: float = Field(default=6 * 3600, gt=0)
    integration_deadline_hours: float = Field(default=48, gt=0,
                                              description="No integration report by then: the submission is given up.")
    follow_days: float = Field(default=60, gt=0, description="How long an integrated invoice's history is followed.")

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret.get_secret_value() and self.login)

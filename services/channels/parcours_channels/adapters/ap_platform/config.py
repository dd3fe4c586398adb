"""AP platform partners (env PARCOURS_CHANNELS_AP_PLATFORM_PARTNERS, a JSON object by partner
name): where to push, how to authenticate, how to map fields. Adding a partner is configuration."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from parcours_channels.domain.ap_platform import unknown_fields


class OAuth2Auth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["oauth2"]
    token_url: str = Field(pattern=r"^https?://")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scope: str | None = None


class ApiKeyAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["api_key"]
    header: str = Field(default="X-Api-Key", pattern=r"^[A-Za-z0-9-]+$")
    key: SecretStr


class ApPartner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(pattern=r"^https?://")
    submit_path: str = Field(default="/invoices", pattern=r"^/")
    auth: Annotated[OAuth2Auth | ApiKeyAuth, Field(discriminator="kind")]
    mapping: dict[str, str] = Field(min_length=1, description="Partner body path → Parcours field.")
    reference_field: str = Field(default="id", description="Where the partner's answer carries its document id.")
    idempotency_header: str | None = Field(default="Idempotency-Key", pattern=r"^[A-Za-z0-9-]+$",
                                           description="Header carrying the dispatch id, so a resubmission is recognised.")
    recipient_domains: frozenset[str] = Field(default_factory=frozenset,
                                              description="Mail domains of this platform's buyer mailboxes.")
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("mapping")
    @classmethod
    def _known_fields(cls, mapping: dict[str, str]) -> dict[str, str]:
        if unknown := unknown_fields(mapping):
            raise ValueError(f"unknown Parcours field(s) in mapping: {', '.join(unknown)}")
        return mapping

    @field_validator("recipient_domains")
    @classmethod
    def _lower(cls, domains: frozenset[str]) -> frozenset[str]:
        return frozenset(domain.lower() for domain in domains)


class ApPlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_CHANNELS_AP_PLATFORM_", extra="ignore")

    partners: dict[str, ApPartner] = Field(default_factory=dict)

"""AP platforms (the buyer's supplier-invoice platform, Yooz/Freedz style): which configured
partner a dispatch goes to, and the partner's JSON body from Parcours' fields. No IO.

A partner's `mapping` says where each Parcours field goes in its body, as dotted paths:
{"externalId": "dispatch_id", "document.content": "document_base64", "meta.tenant": "tenant_id"}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

FIELDS = frozenset({
    "tenant_id", "invoice_id", "dispatch_id", "number", "type_code", "issue_date", "due_date", "currency",
    "total_excl_tax", "total_tax", "total_incl_tax", "seller_name", "buyer_name", "customer_ref", "recipient",
    "document_base64", "document_name", "document_media_type", "document_syntax",
})


def unknown_fields(mapping: Mapping[str, str]) -> list[str]:
    """Parcours fields a mapping names that do not exist."""
    return sorted(set(mapping.values()) - FIELDS)


def partner_body(mapping: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, Any]:
    """The partner's body: each mapped Parcours value at its dotted path."""
    body: dict[str, Any] = {}
    for path, field in mapping.items():
        *parents, leaf = path.split(".")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = values[field]
    return body


def value_at(body: Any, path: str) -> Any:
    """The value at a dotted path of a partner's answer, or None."""
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return None
        body = body[part]
    return body


def choose_partner(partners: Mapping[str, frozenset[str]], recipient_domains: list[str]) -> str | None:
    """The partner serving a recipient's mail domain (its buyer mailboxes); the only partner if
    there is one and no domain is claimed by name; None when nothing fits."""
    for domain in recipient_domains:
        for name, domains in partners.items():
            if domain.lower() in domains:
                return name
    unclaimed = [name for name, domains in partners.items() if not domains]
    return unclaimed[0] if len(unclaimed) == 1 else None


# What a configured partner is (channels' setting `ap_platform_partners`, by partner name).

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

"""Ingest consumes no business events; the runtime's tenancy handlers keep its API keys."""

from __future__ import annotations

from parcours_contracts.events import EventEnvelope
from parcours_runtime.consumer import Handler
from parcours_runtime.service import ServiceContext


def build(ctx: ServiceContext) -> dict[type[EventEnvelope], Handler]:
    """No handlers of its own: TenantApiKeyIssued/Revoked are handled by the runtime."""
    return {}

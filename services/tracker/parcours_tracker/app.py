"""Wiring of the tracker: its API, its handlers, its tables."""

from __future__ import annotations

from fastapi import FastAPI

from parcours_runtime.service import ServiceContext, ServiceDefinition
from parcours_tracker import api, handlers
from parcours_tracker.store.models import Base

DESCRIPTION = """Keeps each invoice's journey (every event about it, in the order it happened) and its
status, and proves arrival: tracked-link clicks (`/l/{token}`) and signed partner acks
(`POST /v1/acks/{channel}`), both published as events."""


def create_app(ctx: ServiceContext) -> FastAPI:
    app = FastAPI(title="Parcours tracker", version="0.1.0", description=DESCRIPTION)
    app.include_router(api.router)
    return app


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="tracker", metadata=Base.metadata, create_app=create_app, handlers=handlers.build)

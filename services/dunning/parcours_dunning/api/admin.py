"""With time travel on (never in production): the admin routes that move the clock and run
a scheduler pass (admin token)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict

from parcours_runtime.problems import Problem
from parcours_runtime.tenancy import require_admin

from parcours_dunning.domain.clock import SettableClock
from parcours_dunning.scheduler import PassResult

admin_router = APIRouter(prefix="/v1/admin", tags=["admin (time travel)"], dependencies=[Depends(require_admin)])


class ClockWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: AwareDatetime


class ClockRead(BaseModel):
    now: datetime


def _settable_clock(request: Request) -> SettableClock:
    clock = request.app.state.ctx.extras["clock"]
    if not isinstance(clock, SettableClock):
        raise Problem(409, "The service clock cannot be set.")
    return clock


@admin_router.get("/clock", response_model=ClockRead, summary="The service's current time")
async def get_clock(request: Request) -> ClockRead:
    return ClockRead(now=request.app.state.ctx.extras["clock"].now())


@admin_router.put("/clock", response_model=ClockRead, summary="Travel to another instant")
async def set_clock(body: ClockWrite, request: Request) -> ClockRead:
    return ClockRead(now=_settable_clock(request).set(body.now))


@admin_router.post("/scheduler/run", response_model=PassResult, summary="Run one scheduler pass now")
async def run_scheduler(request: Request) -> PassResult:
    return await request.app.state.ctx.extras["scheduler"].run_once()

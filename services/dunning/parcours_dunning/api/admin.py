"""With time travel on (never in production): the admin routes that move the clock and run
a scheduler pass (admin token)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from parcours_runtime.clock import clock_routes
from parcours_runtime.tenancy import require_admin

from parcours_dunning.scheduler import PassResult

admin_router = APIRouter(prefix="/v1/admin", tags=["admin (time travel)"], dependencies=[Depends(require_admin)])


clock_routes(admin_router)


@admin_router.post("/scheduler/run", response_model=PassResult, summary="Run one scheduler pass now")
async def run_scheduler(request: Request) -> PassResult:
    return await request.app.state.ctx.extras["scheduler"].run_once()

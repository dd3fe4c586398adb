"""HTTP API of channels. `GET /v1/channels` needs no API key: it describes the deployment,
not any tenant's data. A tenant's mail settings (api_mail) need its API key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from parcours_channels import api_mail, api_partners
from parcours_channels.adapters.registry import ADAPTERS

router = APIRouter(prefix="/v1", tags=["channels"])


class ChannelRead(BaseModel):
    name: str = Field(description="Channel name, as router puts it in DispatchRequested.channel.")


class ChannelList(BaseModel):
    channels: list[ChannelRead]


@router.get("/channels", response_model=ChannelList, summary="Channels this deployment delivers through")
async def list_channels(request: Request) -> ChannelList:
    """Names of the registered channel adapters, sorted."""
    adapters = request.app.state.ctx.extras[ADAPTERS]
    return ChannelList(channels=[ChannelRead(name=name) for name in sorted(adapters)])


router.include_router(api_mail.router)
router.include_router(api_partners.router)

"""Adapters are found by name through the `parcours.channels` entry points, once at start-up."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from parcours_channels.adapters import ChannelAdapter
from parcours_runtime.service import BackgroundJob, ServiceContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "parcours.channels"
ADAPTERS = "adapters"  # key of the loaded adapters in ServiceContext.extras


def load_adapters(group: str = ENTRY_POINT_GROUP) -> dict[str, ChannelAdapter]:
    """Instantiate every adapter registered in `group`, by channel name."""
    adapters: dict[str, ChannelAdapter] = {}
    for entry in entry_points(group=group):
        if entry.name in adapters:
            continue  # the same distribution seen twice on sys.path
        adapter = entry.load()()
        if adapter.name != entry.name:
            raise RuntimeError(f"entry point {entry.name!r} loads an adapter named {adapter.name!r}")
        adapters[entry.name] = adapter
    log.info("channel adapters: %s", ", ".join(sorted(adapters)) or "none")
    return adapters


def adapter_jobs(ctx: ServiceContext) -> list[BackgroundJob]:
    """The background jobs loaded adapters run (a partner's follow-up polling), if they have any."""
    return [job for adapter in ctx.extras[ADAPTERS].values()
            for job in getattr(adapter, "background_jobs", lambda _ctx: [])(ctx)]

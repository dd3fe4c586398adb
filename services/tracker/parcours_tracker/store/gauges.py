"""What operators watch, read at each metrics scrape (see parcours_runtime.metrics)."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from parcours_tracker.store.models import Incident


async def open_incidents(session: AsyncSession) -> dict[str, int]:
    """Open incidents by kind, all tenants."""
    rows = await session.execute(select(Incident.kind, func.count()).where(Incident.status == "open")
                                 .group_by(Incident.kind))
    return {kind: count for kind, count in rows}


async def time_to_ack(session: AsyncSession) -> dict[str, float]:
    """Seconds from first dispatch to acknowledgement of the invoices acknowledged in the last 24 h:
    p50, p90, p99 (empty when none was)."""
    row = (await session.execute(text(
        "SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM acked_at - first_dispatched_at)) "
        "FROM invoices WHERE acked_at > now() - interval '1 day' AND first_dispatched_at IS NOT NULL"))).scalar_one()
    return {} if row is None else dict(zip(("p50", "p90", "p99"), (float(v) for v in row)))

"""The channels database."""

from parcours_channels.store.base import Base
from parcours_channels.store import deferrals, partner_submissions, sends, tenant_mail  # noqa: F401  (registers the tables on Base.metadata)

__all__ = ["Base"]

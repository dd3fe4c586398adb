"""Dunning's own database: invoices it duns, their reminder schedule, receipt evidence, dispatch outcomes."""

from parcours_dunning.store.base import Base
from parcours_dunning.store import invoices, schedule  # noqa: F401  (registers the tables on Base.metadata)

metadata = Base.metadata

"""Dunning's own database: invoices it duns and their facts, strategies and assignments, customers,
the reminder schedule, tasks and the audit log."""

from parcours_dunning.store.base import Base
from parcours_dunning.store import customers, invoices, journal, schedule, strategies  # noqa: F401  (registers the tables on Base.metadata)

metadata = Base.metadata

"""Alembic environment of the tracker database: its tables and the runtime's (see parcours_runtime.migrations)."""

from parcours_runtime.migrations import run_env
from parcours_tracker.store.models import Base

run_env(Base.metadata)

"""Alembic environment of the portal database: its tables and the runtime's (see parcours_runtime.migrations)."""

from parcours_runtime.migrations import run_env
from parcours_portal.store.models import Base

run_env(Base.metadata)

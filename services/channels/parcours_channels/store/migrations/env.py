"""Alembic environment of the channels database: its tables and the runtime's (see parcours_runtime.migrations)."""

from parcours_runtime.migrations import run_env
from parcours_channels.store import Base

run_env(Base.metadata)

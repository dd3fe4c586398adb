"""Alembic environment of the dunning database: its tables and the runtime's (see parcours_runtime.migrations)."""

from parcours_runtime.migrations import run_env
from parcours_dunning.store import metadata

run_env(metadata)

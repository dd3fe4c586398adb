"""Alembic environment of the ingest database: its tables and the runtime's (see parcours_runtime.migrations)."""

from parcours_runtime.migrations import run_env
from parcours_ingest.store import metadata

run_env(metadata)

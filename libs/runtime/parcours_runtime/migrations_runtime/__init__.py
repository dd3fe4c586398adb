"""Alembic revisions of the runtime tables (branch `runtime`); a package so wheels ship it."""

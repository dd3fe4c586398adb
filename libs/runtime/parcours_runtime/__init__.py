"""Shared runtime of the Parcours services."""

"""Pure routing rules: no IO, no framework."""

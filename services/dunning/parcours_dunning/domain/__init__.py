"""Pure dunning rules: clocks, strategies, plans and decisions. No IO, no framework."""

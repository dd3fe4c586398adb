"""Pure rules of ingest: the invoice model, its arithmetic, tenant ids, request fingerprints."""

"""Parcours ingest: the front door for invoices and the issuer of tenants and API keys."""

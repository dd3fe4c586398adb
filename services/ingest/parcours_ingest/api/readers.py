"""Who may read an invoice's documents: its tenant (API key), or a Parcours service holding
the document-reader token and naming the tenant (`X-Parcours-Tenant`).

Channels fetch the document they deposit at a partner this way (a claim check: events carry
the invoice summary, never the document). The token reads documents only, of any tenant."""

from __future__ import annotations

from parcours_runtime.service_tokens import tenant_or_service

authenticate_document_reader = tenant_or_service("document_reader_token", what="document-reader token")

"""Ingest's own database: tenants, invoices (+ their PDFs) and idempotency keys."""

from parcours_ingest.store import batch_models  # noqa: F401  (its tables join the metadata)
from parcours_ingest.store import document_models  # noqa: F401
from parcours_ingest.store.models import Base

metadata = Base.metadata

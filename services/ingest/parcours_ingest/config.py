"""Ingest settings (env prefix PARCOURS_INGEST_)."""

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from parcours_runtime.settings import ServiceSettings

DEV_ADMIN_TOKEN = "dev-admin-token"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_INGEST_", extra="ignore")

    http_port: int = 8101
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours_ingest"
    # Ingest consumes only customer and branding changes: a fetch held longer costs less while idle.
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=1, le=10000)
    admin_token: str = Field(default=DEV_ADMIN_TOKEN, min_length=1,
                             description="Bearer token of the tenant administration API.")
    document_reader_token: SecretStr | None = Field(
        default=None, description="Bearer token services (channels, portal) read invoice documents with, for the "
                                  "tenant they name in X-Parcours-Tenant (unset: none may).")
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024,
                                description="Largest accepted request body (the base64 PDF included).")
    xsd_validation: bool = Field(default=True, description="Validate UBL/CII documents against their XSD.")
    schematron: bool = Field(default=True, description="Check UBL/CII/Factur-X documents against the EN 16931 "
                                                       "schematron (official business rules BR-…).")
    schematron_fr_ctc: bool = Field(default=False, description="Also check CII and Factur-X documents against the "
                                    "French CTC rules (e-invoicing reform, flux 2: BR-FR-…); none exist for UBL.")
    schematron_preload: bool = Field(default=False, description="Compile the XSDs (≈ 36 MB, 0.15 s) and the CII and "
                                     "UBL schematrons (≈ 80 MB each, 0.3 s) at start-up rather than on the first "
                                     "document of each syntax.")
    blob_store_url: str = Field(default="file:.parcours/blobs",
                                description="Where documents are kept, content-addressed: file:PATH, or "
                                            "s3://BUCKET/PREFIX[?endpoint=URL&region=R] (credentials: the AWS chain).")
    default_language: Literal["fr", "en"] = Field(default="fr", description="Language of rendered invoices when the "
                                                                            "customer's is unknown.")
    identifier_checksums: bool = Field(default=True, description="Refuse SIREN/SIRET numbers whose check digit is wrong.")
    max_xml_depth: int = Field(default=200, ge=10, le=250, description="Deepest element nesting accepted in XML.")
    max_pdf_pages: int = Field(default=1000, ge=1, description="Most pages accepted in one invoice PDF.")
    max_pdf_stream_bytes: int = Field(default=50 * 1024 * 1024, ge=1024,
                                      description="Largest decompressed PDF stream (decompression-bomb guard).")
    # batches (/v1/batches): each file at most max_body_bytes, the whole upload at most max_batch_bytes
    max_batch_bytes: int = Field(default=200 * 1024 * 1024, ge=1024, description="Largest accepted batch upload.")
    http_max_body_bytes: int | None = Field(default=None, description="No blanket limit: each route reads its body "
                                                                       "under max_body_bytes / max_batch_bytes.")
    max_batch_items: int = Field(default=50_000, ge=1, description="Most invoices (or spreadsheet rows) in one batch.")
    max_batch_pdf_pages: int = Field(default=10_000, ge=1, description="Most pages of a PDF to split.")
    group_commit_window_ms: float = Field(
        default=10, ge=0, le=100,
        description="Longest a POST /v1/invoices waits for others to share its statement (group commit); it waits "
                    "less, about two usual gaps between POSTs, when they come closer. At a moderate rate each group "
                    "is a statement, a WAL flush and a publication: at 200 invoices/s, 10 ms rather than 2 took "
                    "0.5–0.8 CPU ms per invoice off the box and did not lengthen the POSTs' own p50 "
                    "(docs/performance.md).")
    batch_chunk_size: int = Field(default=250, ge=1, le=5000, description="Invoices stored per transaction.")
    batch_lease_seconds: float = Field(default=60.0, gt=0, description=(
        "How long a claimed batch stays with its worker without progress before another one resumes it."))
    batch_poll_seconds: float = Field(default=1.0, gt=0, description="How often workers look for batches to process.")
    batch_max_attempts: int = Field(default=3, ge=1, description="Claims of a batch that fails before it is failed.")

    @model_validator(mode="after")
    def _refuse_dev_admin_token(self):
        self.refuse_dev_secret("admin_token", self.admin_token, DEV_ADMIN_TOKEN)
        return self

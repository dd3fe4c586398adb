"""Portal settings (env prefix PARCOURS_PORTAL_; lists are given as JSON)."""

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from parcours_runtime.settings import UnhurriedServiceSettings

DEV_SESSION_SECRET = "dev-session-secret"
DEV_LINK_SECRET = "dev-link-secret"
DEV_ADMIN_TOKEN = "dev-admin-token"


class Settings(UnhurriedServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_PORTAL_", extra="ignore")

    http_port: int = 8106
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours_portal"
    session_secret: str = Field(default=DEV_SESSION_SECRET, min_length=12,
                                description="Signs session cookies and form tokens.")
    session_hours: float = Field(default=12, gt=0, description="A console session's life.")
    recipient_session_hours: float = Field(default=2, gt=0, description="A recipient's session after a link.")
    secure_cookies: bool = Field(default=False, description="Cookies only over HTTPS (on in production).")
    link_secrets: list[str] = Field(
        default_factory=lambda: [DEV_LINK_SECRET], min_length=1,
        description="The tracker's tracked-link secrets: a recipient enters the portal with the link of the mail.")
    admin_token: str = Field(default=DEV_ADMIN_TOKEN, description="Bearer token of /v1/admin (user bootstrap).")
    max_attachment_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    http_max_body_bytes: int | None = Field(default=8 * 2**20, ge=1024, description="Room for an attachment's form.")
    public_url: str = Field(default="http://127.0.0.1:8106", pattern=r"^https?://",
                            description="Base URL of the portal, for the sign-in links it mails.")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = Field(default="Parcours <no-reply@parcours.localhost>", description="Sender of sign-in mails.")
    sign_in_minutes: int = Field(default=15, ge=1, description="How long a mailed sign-in link stays valid.")
    sign_in_per_hour: int = Field(default=3, ge=1, description="Sign-in mails per address and hour, at most.")
    ingest_url: str = Field(default="http://127.0.0.1:8101", pattern=r"^https?://",
                            description="Where invoice documents are read (ingest's claim check).")
    ingest_document_token: SecretStr | None = Field(
        default=None, description="ingest's document-reader token; unset: the pages offer no PDF or XML.")
    oidc_issuer: str | None = Field(
        default=None, pattern=r"^https?://", description="An OpenID Connect provider for console sign-in (its "
                                                         "issuer URL, discovery under /.well-known); unset: passwords only.")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    dunning_url: str = Field(default="http://127.0.0.1:8105", pattern=r"^https?://",
                             description="Where the console reads dunning's agenda and plans, holds and strategies.")
    dunning_console_token: SecretStr | None = Field(
        default=None, description="dunning's console token (it acts for the session's tenant with it); unset: the "
                                  "console offers no agenda, holds or strategy editor.")

    @model_validator(mode="after")
    def _check_secrets(self):
        self.refuse_dev_secret("session_secret", self.session_secret, DEV_SESSION_SECRET)
        self.refuse_dev_secret("admin_token", self.admin_token, DEV_ADMIN_TOKEN)
        for secret in self.link_secrets:
            self.refuse_dev_secret("link_secrets", secret, DEV_LINK_SECRET)
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            raise ValueError("oidc_issuer needs oidc_client_id and oidc_client_secret")
        if self.is_production and not self.secure_cookies:
            raise ValueError("secure_cookies must be on in production")
        return self

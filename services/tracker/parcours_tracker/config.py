"""Tracker settings (env prefix PARCOURS_TRACKER_; lists and dicts are given as JSON)."""

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from parcours_runtime.settings import ServiceSettings
from parcours_tracker.domain.incidents import DEFAULT_WINDOWS, ReceiptWindow

DEV_LINK_SECRET = "dev-link-secret"
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_ACK_SECRET = "dev-ack-secret"
MAX_ACTIVE_ACK_SECRETS = 2


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_TRACKER_", extra="ignore")

    http_port: int = 8104
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours_tracker"
    public_url: str = Field(default="http://127.0.0.1:8104",
                            description="Base URL recipients reach the tracker at; channels builds its links on it.")
    portal_url: str | None = Field(
        default=None, pattern=r"^https?://",
        description="Base URL of the portal: the invoice page links the recipient to `/p/{token}` there, to answer.")
    link_secrets: list[str] = Field(
        default_factory=lambda: [DEV_LINK_SECRET], min_length=1,
        description="Tracked-link secrets. The tracker only verifies, so all are accepted: list the new and "
                    "the old one while rotating (channels signs with the new one).")
    ack_secrets: dict[str, list[str]] = Field(
        default_factory=lambda: {channel: [DEV_ACK_SECRET] for channel in ("edi", "ap_platform", "chorus_pro")},
        description="Per partner channel, the 1 or 2 active webhook secrets (two while rotating).")
    ack_tolerance_seconds: int = Field(default=300, ge=1, description="Accepted clock gap of a signed ack.")
    ack_max_body_bytes: int = Field(default=64 * 1024, ge=256)
    statement_max_bytes: int = Field(default=10 * 2**20, ge=1024, description="Largest camt.053 statement accepted.")
    http_max_body_bytes: int | None = Field(default=12 * 2**20, ge=1024, description="Room for a camt.053 statement.")
    receipt_windows: dict[str, ReceiptWindow] = Field(
        default_factory=lambda: dict(DEFAULT_WINDOWS),
        description="Per channel, how long it has to prove receipt and which proof: "
                    '{"edi": {"hours": 1, "proof": "ack"}, "email_link": {"business_days": 2, "proof": "view"}}. '
                    "A channel without a window never opens a not_received incident.")
    holiday_country: str | None = Field(
        default="FR", description="Public holidays that are not business days (needs the `holidays` package; "
                                  "without it, or when empty, only weekends are skipped).")
    sweep_tick_seconds: float = Field(default=60, gt=0, description="How often the receipt sweep runs.")
    sweep_batch_size: int = Field(default=500, ge=1)
    prefetch_seconds: float = Field(
        default=10, ge=0, description="A link GET this soon after the dispatch is a mail scanner's prefetch.")
    durable_opens: bool = Field(
        default=False, description="Commit each group of link opens only once PostgreSQL has flushed it to disk. "
                                   "Off: a crash of the database host may lose its last fraction of a second of "
                                   "opens (evidence only, never a status); a kill of the tracker loses none.")
    time_travel: bool = Field(
        default=False, description="Run on a settable clock and expose /v1/admin/clock and /v1/admin/sweep/run.")
    admin_token: str = Field(default=DEV_ADMIN_TOKEN, description="Bearer token of the admin routes.")

    @model_validator(mode="after")
    def _check_secrets(self):
        for secret in self.link_secrets:
            self.refuse_dev_secret("link_secrets", secret, DEV_LINK_SECRET)
        for channel, secrets in self.ack_secrets.items():
            if not 1 <= len(secrets) <= MAX_ACTIVE_ACK_SECRETS:
                raise ValueError(f"ack_secrets[{channel}] must hold 1 or {MAX_ACTIVE_ACK_SECRETS} secrets")
            if any(not secret for secret in secrets):
                raise ValueError(f"ack_secrets[{channel}] holds an empty secret")
            for secret in secrets:
                self.refuse_dev_secret(f"ack_secrets[{channel}]", secret, DEV_ACK_SECRET)
        self.refuse_dev_secret("admin_token", self.admin_token, DEV_ADMIN_TOKEN)
        if self.is_production and self.time_travel:
            raise ValueError("time_travel must stay off in production")
        if any(not secret for secret in self.link_secrets):
            raise ValueError("link_secrets holds an empty secret")
        return self

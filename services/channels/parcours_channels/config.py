"""Settings of the channels service (env prefix PARCOURS_CHANNELS_)."""

from email.utils import parseaddr

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from parcours_channels.domain.ap_platform import ApPartner
from parcours_channels.domain.chorus_pro import ChorusProAccount
from parcours_channels.domain.edi_profiles import EdiSettings
from parcours_channels.domain.peppol import PeppolSettings
from parcours_runtime.settings import ServiceSettings

DEV_LINK_SECRET = "dev-link-secret"
DEV_BOUNCE_SECRET = "dev-bounce-secret"
DEV_KEY_ENCRYPTION_SECRET = "dev-key-encryption-secret"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PARCOURS_CHANNELS_", extra="ignore")

    http_port: int = 8103
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours_channels"
    consumer_batch_size: int = Field(default=100, ge=1, description=(
        "Dispatch requests taken per poll. Each is a task sending over the smtp_concurrency sessions: 100 keep "
        "them busy; 500 sent no faster and held ≈ 5 MB more at once, a high-water mark the process keeps."))

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = Field(default=30, gt=0, description="Seconds for each SMTP connect/command.")
    smtp_concurrency: int = Field(default=8, ge=1, description="SMTP sessions open at once, process-wide.")
    smtp_idle_seconds: float = Field(default=10, gt=0, description="An SMTP session idle longer is closed, not reused.")
    smtp_max_per_domain: int = Field(default=0, ge=0, description="Sends to one destination domain at once (0: no limit).")
    smtp_domain_rate: float = Field(default=0, ge=0, description="Sends per second to one destination domain (0: no limit).")
    smtp_tenant_rate: float = Field(default=0, ge=0, description="Sends per second for one tenant (0: no limit).")
    # A recipient put off (SMTP 4xx, relay away) is retried by a periodic job, not by redelivering the event.
    smtp_retry_attempts: int = Field(default=8, ge=1, description="Attempts of a put-off recipient before giving up.")
    smtp_retry_first_seconds: float = Field(default=120, gt=0, description="First retry after; doubles after that.")
    smtp_retry_longest_seconds: float = Field(default=3600, gt=0, description="Longest wait between two retries.")
    smtp_retry_poll_seconds: float = Field(default=10, gt=0, description="How often due retries are looked for.")
    dispatch_concurrency: int = Field(default=64, ge=1, description="Deliveries of a polled batch in flight at once.")
    mail_from: str = "Parcours <invoices@parcours.localhost>"
    message_id_domain: str = Field(default="parcours.localhost", pattern=r"^[A-Za-z0-9.-]+$")

    tracker_public_url: str = Field(default="http://127.0.0.1:8104", pattern=r"^https?://")
    link_secret: SecretStr = SecretStr(DEV_LINK_SECRET)
    link_ttl_days: int = Field(default=180, ge=1)
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)

    # Bounces: every message's envelope sender is bounce+<signed token>@bounce_domain, and the
    # bounce endpoint (an SMTP server this process runs) takes what comes back to that domain.
    # The domain's MX must point at the endpoint.
    bounce_domain: str = Field(default="bounces.parcours.localhost", pattern=r"^[A-Za-z0-9.-]+$")
    bounce_secret: SecretStr = SecretStr(DEV_BOUNCE_SECRET)
    bounce_previous_secrets: list[SecretStr] = Field(
        default_factory=list, description="Still accepted on return paths while a rotated secret's mail may bounce.")
    bounce_smtp_host: str = "127.0.0.1"
    bounce_smtp_port: int = Field(default=2526, ge=0, le=65535,
                                  description="0: any free port (tests). Outside production a taken port "
                                              "falls back to a free one, logged.")
    bounce_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024,
                                  description="Largest bounce accepted (they may carry the original message).")

    # Tenant sender domains: DKIM private keys are sealed at rest with this secret.
    key_encryption_secret: SecretStr = SecretStr(DEV_KEY_ENCRYPTION_SECRET)
    key_encryption_previous_secrets: list[SecretStr] = Field(
        default_factory=list, description="Still open keys sealed before a rotation of key_encryption_secret.")
    spf_expected: list[str] = Field(
        default=["include:spf.parcours.localhost"], min_length=1,
        description="SPF mechanisms naming our sending hosts; a sender domain's SPF record must reach one.")
    dns_nameservers: list[str] = Field(default_factory=list,
                                       description="Resolvers for the sender-domain check (empty: the system's).")
    dns_port: int = Field(default=53, ge=1, le=65535)
    dns_timeout: float = Field(default=5, gt=0, description="Seconds for one sender-domain DNS lookup.")
    tenant_mail_ttl_seconds: float = Field(
        default=30, ge=0, description="How long a tenant's sender domain, branding and templates are cached.")
    dkim_selector: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,63}$",
                                      description="Selector of the platform's own DKIM key (mail from mail_from).")
    dkim_private_key: SecretStr | None = Field(
        default=None, description="PEM of the platform's own DKIM key; tenants with a sender domain use theirs.")

    # Partner channels (services/channels/README.md). Their document comes from ingest by claim check.
    ingest_url: str = Field(default="http://127.0.0.1:8101", pattern=r"^https?://")
    ingest_document_token: SecretStr | None = Field(default=None, description="ingest's document-reader token.")
    partner_max_attempts: int = Field(
        default=4, ge=1, description="Attempts of a submission while its partner is away (unreachable, 5xx, 429) "
                                     "before the dispatch fails for good and router falls back; never more than "
                                     "consumer_max_attempts. Retried with the consumer's backoff.")
    # chorus_pro: the PISTE application (OAuth2 client credentials) and the Chorus Pro technical account.
    chorus_pro_oauth_url: str = Field(default="https://sandbox-oauth.piste.gouv.fr/api/oauth/token",
                                      pattern=r"^https?://", description="PISTE's OAuth2 token endpoint.")
    chorus_pro_api_url: str = Field(default="https://sandbox-api.piste.gouv.fr", pattern=r"^https?://")
    chorus_pro_client_id: str = ""
    chorus_pro_client_secret: SecretStr = SecretStr("")
    chorus_pro_login: str = Field(default="", description="The technical account of tenants without their own.")
    chorus_pro_password: SecretStr = SecretStr("")
    chorus_pro_accounts: dict[str, ChorusProAccount] = Field(
        default_factory=dict, description="Each tenant's own technical account, by tenant id (JSON).")
    chorus_pro_timeout_seconds: float = Field(default=30, gt=0)
    chorus_pro_poll_seconds: float = Field(default=60, gt=0, description="How often due follow-ups are looked for.")
    chorus_pro_first_check_seconds: float = Field(default=60, gt=0, description="First follow-up; doubles after.")
    chorus_pro_longest_check_seconds: float = Field(default=6 * 3600, gt=0)
    chorus_pro_integration_deadline_hours: float = Field(
        default=48, gt=0, description="No integration report by then: the deposit is given up.")
    chorus_pro_follow_days: float = Field(default=60, gt=0, description="How long an invoice's history is followed.")
    chorus_pro_batch_max: int = Field(default=1, ge=1, le=500, description=(
        "Invoices per deposit: above 1 they are queued and deposited together as a tar.gz by the follow-up "
        "once batch_max are queued or the oldest waited chorus_pro_batch_wait_seconds; 1: each at once."))
    chorus_pro_batch_wait_seconds: float = Field(default=300, ge=0, description="Longest wait of a queued invoice.")
    # ap_platform: the buyers' AP platforms, by name; adding one is adding an entry.
    ap_platform_partners: dict[str, ApPartner] = Field(default_factory=dict)
    # edi: EDIFACT INVOIC over AS2, our identity and the trading partners (domain/edi_profiles.py).
    edi: EdiSettings = Field(default_factory=EdiSettings)
    # peppol: our access point's REST API and the participant ids (domain/peppol.py).
    peppol: PeppolSettings = Field(default_factory=PeppolSettings)

    @model_validator(mode="after")
    def _check_mail_settings(self):
        self.refuse_dev_secret("link_secret", self.link_secret.get_secret_value(), DEV_LINK_SECRET)
        self.refuse_dev_secret("bounce_secret", self.bounce_secret.get_secret_value(), DEV_BOUNCE_SECRET)
        self.refuse_dev_secret("key_encryption_secret", self.key_encryption_secret.get_secret_value(),
                               DEV_KEY_ENCRYPTION_SECRET)
        if "@" not in parseaddr(self.mail_from)[1]:
            raise ValueError("mail_from must hold an address, e.g. 'Parcours <invoices@example.com>'")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together")
        if (self.dkim_selector is None) != (self.dkim_private_key is None):
            raise ValueError("dkim_selector and dkim_private_key go together")
        return self

    def bounce_secrets(self) -> list[str]:
        """Secrets a return path may be signed with, the current one first."""
        return [secret.get_secret_value() for secret in (self.bounce_secret, *self.bounce_previous_secrets)]

    def key_encryption_secrets(self) -> list[str]:
        """Secrets a sealed DKIM key may be sealed with, the current one first."""
        return [s.get_secret_value() for s in (self.key_encryption_secret, *self.key_encryption_previous_secrets)]

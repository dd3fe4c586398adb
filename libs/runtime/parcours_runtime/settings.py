"""Settings every service has. Each service subclasses with env prefix PARCOURS_<NAME>_."""

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    environment: str = Field(default="development", description="development | test | production")
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/parcours"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    topic_partitions: int = Field(default=4, ge=1, description="Used when this service creates a missing topic.")
    create_topics: bool = Field(
        default=True,
        description="Create missing topics at start-up (dev, tests). Off where topics are managed (Strimzi KafkaTopic).")
    consumer_max_attempts: int = Field(default=5, ge=1, description="Attempts before a message goes to the DLQ.")
    consumer_backoff_seconds: float = Field(default=0.2, ge=0)
    consumer_batch_size: int = Field(default=500, ge=1)
    consumer_session_timeout_ms: int = Field(
        default=10000, ge=1000,
        description="Group session timeout; Tansu also holds a first join for half of it, so dev and tests use 2000.")
    consumer_fetch_max_wait_ms: int = Field(
        default=50, ge=1, le=10000,
        description="Longest a fetch waits for data. Kafka answers as soon as data arrives; Tansu tends to hold "
                    "the fetch, so this bounds the latency each hop adds there (idle cost: a fetch per interval). "
                    "50 rather than 100 ms: p99 POST → dispatched 468 against 556 ms in batches at 260 invoices/s, "
                    "≈ 50 CPU ms per second more idle, box-wide (docs/performance.md).")
    consumer_quiet_fetch_max_wait_ms: int = Field(
        default=500, ge=1, le=10000,
        description="The same for the topics off the delivery path (acknowledgements, clicks, configuration…) of a "
                    "service that names its urgent ones (ServiceDefinition.urgent): read by a second consumer.")
    consumer_fetch_min_bytes: int = Field(
        default=1, ge=1,
        description="Data a fetch waits for (up to consumer_fetch_max_wait_ms): above 1, a hop at a moderate rate "
                    "takes its events in fewer, larger polls, each costing a transaction and wake-ups.")
    consumer_max_partition_fetch_bytes: int = Field(
        default=256 * 1024, ge=1024,
        description="Events a fetch brings per partition, at most (an event larger still comes whole). What a lagging "
                    "consumer holds fetched ahead of its polls: aiokafka's 1 MiB per partition raised channels' "
                    "peak RSS by 1.5–6 MB in 20 000-invoice runs.")
    outbox_batch_size: int = Field(default=500, ge=1)
    http_max_body_bytes: int | None = Field(
        default=2 * 2**20, ge=1024,
        description="Largest HTTP request body (413 beyond). Services taking uploads raise it; None: no limit "
                    "(the service reads its bodies under limits of its own).")
    http_body_timeout_seconds: float = Field(
        default=30, gt=0, description="Longest pause between two chunks of a request body (408 beyond).")
    db_pool_size: int = Field(default=10, ge=1)
    cpu_niceness: int = Field(
        default=0, ge=0, le=19,
        description="Added to the process's niceness at start (`python -m parcours_<name>`), and to its session's "
                    "when the process leads one (Linux autogroups share the CPU between sessions first): on a box the "
                    "services share, a higher value yields the CPU to the others when they all want it. No effect "
                    "between Kubernetes pods (each has its own CPU share: set that with requests).")
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description='Override the public routes\' rate limits by name: {"link": "600/60"} (a burst of 600 requests '
                    'per client, refilled at 600 per 60 s) or "off". Per replica: a global limit belongs to the ingress.')
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For names the client (for the rate "
                    "limits). Empty: the TCP peer is the client.")
    rate_limit_max_keys: int = Field(
        default=50_000, ge=100, description="Buckets kept per rate limit; past it the least recently used goes.")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def refuse_dev_secret(self, name: str, value: str, dev_default: str) -> None:
        if self.is_production and value == dev_default:
            raise ValueError(f"{name} must be set to a real secret in production")

    @model_validator(mode="after")
    def _check_url(self):
        if not self.database_url.startswith("postgresql+asyncpg://"):
            raise ValueError("database_url must be a postgresql+asyncpg:// URL")
        return self


class UnhurriedServiceSettings(ServiceSettings):
    """A service whose events are not urgent to the second (dunning: reminders run on days; the portal: a recipient
    arrives minutes after the mail). Its consumer takes them in fewer, larger polls, each a transaction and a few
    wake-ups whatever its size: at 170 invoices/s, ≈ 1.2 CPU ms per invoice less, box-wide. On a shared box it also
    runs at the lowest CPU priority, so that a burst goes through the delivery path (ingest → router → channels →
    tracker) first and these catch up after it: 20 000 invoices dispatched and tracked at 451–480 /s with
    niceness 10, 507–508 /s with 19, the two catching up seconds after the burst (docs/performance.md)."""

    consumer_fetch_min_bytes: int = Field(default=65536, ge=1)
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=1, le=10000)
    # Yielding the CPU, it lags on every partition it reads (dunning 36) during a burst: 256 KiB fetched ahead on
    # each had dunning's peak at 150–156 MB in `make bench`, catching up after the paced run.
    consumer_max_partition_fetch_bytes: int = Field(default=64 * 1024, ge=1024)
    cpu_niceness: int = Field(default=19, ge=0, le=19)

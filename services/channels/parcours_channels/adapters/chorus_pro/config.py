"""What the chorus_pro adapter uses of channels' settings (`chorus_pro_*` in config.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr

from parcours_channels.config import Settings
from parcours_channels.domain.chorus_pro import ChorusProAccount


class ChorusProSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    oauth_url: str
    api_url: str
    client_id: str
    client_secret: SecretStr
    login: str
    password: SecretStr
    accounts: dict[str, ChorusProAccount]
    timeout_seconds: float
    poll_seconds: float
    first_check_seconds: float
    longest_check_seconds: float
    integration_deadline_hours: float
    follow_days: float
    batch_max: int
    batch_wait_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> ChorusProSettings:
        return cls(**{name: getattr(settings, f"chorus_pro_{name}") for name in cls.model_fields})

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret.get_secret_value())

    def account_for(self, tenant_id: str) -> ChorusProAccount | None:
        """The tenant's technical account, else the default one, else None."""
        if tenant_id in self.accounts:
            return self.accounts[tenant_id]
        return ChorusProAccount(login=self.login, password=self.password) if self.login else None

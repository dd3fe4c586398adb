"""EDI over AS2 settings, channels' `edi` setting (PARCOURS_CHANNELS_EDI, JSON): our AS2 identity
and each partner's profile, {"as2_id": …, "private_key": PEM, "certificate": PEM, "interchange_id": …,
"partners": {"<name>": {as2_id, url, certificate, interchange_id, customers: [refs or "*"]}}}.

Keys and certificates are PEM text from the environment (a mounted secret), never files named
in code and never logged."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

AS2_ID = r"^[A-Za-z0-9._\- ]{1,128}$"


class As2Partner(BaseModel):
    """One trading partner reached over AS2."""

    as2_id: str = Field(pattern=AS2_ID)
    url: str = Field(pattern=r"^https?://", description="The partner's AS2 endpoint.")
    certificate: str = Field(min_length=1, description="The partner's certificate, PEM: encrypts to it, verifies its MDNs.")
    interchange_id: str = Field(min_length=1, max_length=35, description="The partner's id in UNB (e.g. its GLN).")
    interchange_qualifier: str = Field(default="14", max_length=4, description="UNB id code qualifier (14: GLN).")
    customers: list[str] = Field(default_factory=list, description="Customer refs routed to this partner; '*' for any.")
    encryption: Literal["aes_128_cbc", "aes_192_cbc", "aes_256_cbc", "tripledes_192_cbc"] = "aes_256_cbc"
    digest: Literal["sha256", "sha384", "sha512"] = "sha256"
    mdn_mode: Literal["sync", "async"] = Field(default="sync", description="async: the partner posts its signed MDN "
                                               "later to our mdn_url (channels' POST /v1/as2/mdn).")


class EdiSettings(BaseModel):

    as2_id: str = Field(default="", pattern=r"^$|" + AS2_ID, description="Our AS2 identifier (AS2-From).")
    private_key: SecretStr = Field(default=SecretStr(""), description="Our signing key, PEM (PKCS#8).")
    private_key_password: SecretStr = SecretStr("")
    certificate: str = Field(default="", description="Our certificate, PEM (partners verify our signatures with it).")
    interchange_id: str = Field(default="", max_length=35, description="Our id in UNB.")
    interchange_qualifier: str = Field(default="14", max_length=4)
    message_id_domain: str = Field(default="parcours.localhost", pattern=r"^[A-Za-z0-9.-]+$")
    mdn_url: str = Field(default="", pattern=r"^$|^https?://", description="Where partners in async mode post MDNs "
                         "(channels' public POST /v1/as2/mdn).")
    partners: dict[str, As2Partner] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=60, gt=0, description="For the partner's answer and its synchronous MDN.")
    mdn_deadline_seconds: float = Field(default=24 * 3600, gt=0, description="An async MDN not posted by then: the "
                                        "submission is failed/no-mdn, left to the tracker's receipt window.")
    mdn_sweep_seconds: float = Field(default=60, gt=0, description="How often overdue async MDNs are looked for.")

    @model_validator(mode="after")
    def _async_needs_url(self):
        if not self.mdn_url and any(p.mdn_mode == "async" for p in self.partners.values()):
            raise ValueError("a partner with mdn_mode async needs edi.mdn_url")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.as2_id and self.private_key.get_secret_value() and self.certificate and self.interchange_id)

    def partner_for(self, customer_ref: str) -> tuple[str, As2Partner] | None:
        """The partner a customer's invoices go to: named for it, else the catch-all ('*')."""
        named = [(name, p) for name, p in sorted(self.partners.items()) if customer_ref in p.customers]
        anyone = [(name, p) for name, p in sorted(self.partners.items()) if "*" in p.customers]
        return (named or anyone or [None])[0]

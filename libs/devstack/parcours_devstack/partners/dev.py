"""The partner simulators of `make run`: Chorus Pro and one AP platform (acking by itself to the
tracker's dev secret), and the settings that point channels and ingest at them."""

from __future__ import annotations

import json
import secrets

from parcours_devstack.partners import PartnerServer
from parcours_devstack.partners.ap_platform import ApPlatformSimulator
from parcours_devstack.partners.chorus_pro import ChorusProSimulator

DEV_ACK_SECRET = "dev-ack-secret"  # the tracker's development ack secret
AP_DOMAIN = "ap.parcours.localhost"  # recipients at this domain go to the demo AP platform


class DevPartners:
    def __init__(self) -> None:
        self.chorus = ChorusProSimulator()
        self.ap = ApPlatformSimulator("demo-ap", api_key=secrets.token_urlsafe(16), auto_ack=True,
                                      webhook_secret=DEV_ACK_SECRET,
                                      required={"externalId": "text", "invoice.number": "text",
                                                "file.content": "base64", "metadata.tenant": "text",
                                                "metadata.invoice": "text"})
        self.servers: dict[str, PartnerServer] = {}

    async def start(self, *, tracker_url: str, document_token: str) -> dict[str, dict[str, str]]:
        """Serve both simulators; the extra settings of each service, by service name."""
        self.ap.webhook_url = f"{tracker_url}/v1/acks/ap_platform"
        self.servers = {"chorus_pro": await PartnerServer(self.chorus.app()).start(),
                        "ap_platform": await PartnerServer(self.ap.app()).start()}
        chorus, ap = self.servers["chorus_pro"].url, self.servers["ap_platform"].url
        channels = {
            "INGEST_DOCUMENT_TOKEN": document_token,
            "CHORUS_PRO_OAUTH_URL": f"{chorus}/api/oauth/token", "CHORUS_PRO_API_URL": chorus,
            "CHORUS_PRO_CLIENT_ID": self.chorus.client_id, "CHORUS_PRO_CLIENT_SECRET": self.chorus.client_secret,
            "CHORUS_PRO_LOGIN": self.chorus.login, "CHORUS_PRO_PASSWORD": self.chorus.password,
            "CHORUS_PRO_FIRST_CHECK_SECONDS": "5", "CHORUS_PRO_POLL_SECONDS": "5",
            "AP_PLATFORM_PARTNERS": json.dumps({"demo-ap": {
                "base_url": ap, "submit_path": "/invoices", "recipient_domains": [AP_DOMAIN],
                "auth": {"kind": "api_key", "header": "X-Api-Key", "key": self.ap.api_key},
                "mapping": {"externalId": "dispatch_id", "invoice.number": "number", "file.name": "document_name",
                            "file.content": "document_base64", "metadata.tenant": "tenant_id",
                            "metadata.invoice": "invoice_id"}}}),
        }
        return {"channels": channels, "ingest": {"DOCUMENT_READER_TOKEN": document_token}}

    def urls(self) -> dict[str, str]:
        return {name: f"{server.url}/simulator/state" for name, server in self.servers.items()}

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

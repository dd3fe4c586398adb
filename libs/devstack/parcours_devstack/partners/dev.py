"""The partner simulators of `make run`: Chorus Pro, one AP platform (acking by itself to the
tracker's dev secret), an AS2 trading partner and a Peppol access point (with demo certificates
and keys generated at each start), and the settings that point channels and ingest at them."""

from __future__ import annotations

import json
import secrets

from parcours_devstack.partners import PartnerServer
from parcours_devstack.partners.ap_platform import ApPlatformSimulator
from parcours_devstack.partners.as2_peer import As2Peer, generate_identity
from parcours_devstack.partners.chorus_pro import ChorusProSimulator
from parcours_devstack.partners.peppol_ap import PeppolAccessPoint

DEV_ACK_SECRET = "dev-ack-secret"  # the tracker's development ack secret
AP_DOMAIN = "ap-platform.example"  # recipients at this domain go to the demo AP platform (router refuses .localhost mail)
PUBLIC_BUYER_SIRET = "21750001600019"  # the demo public buyer's establishment, a structure on the Chorus Pro simulator
OUR_AS2_ID = "PARCOURS-DEMO"


class DevPartners:
    def __init__(self) -> None:
        self.chorus = ChorusProSimulator()
        self.chorus.add_structure(PUBLIC_BUYER_SIRET, "Ville de Démo")
        self.ap = ApPlatformSimulator("demo-ap", api_key=secrets.token_urlsafe(16), auto_ack=True,
                                      webhook_secret=DEV_ACK_SECRET,
                                      required={"externalId": "text", "invoice.number": "text",
                                                "file.content": "base64", "metadata.tenant": "text",
                                                "metadata.invoice": "text"})
        self.peppol = PeppolAccessPoint(webhook_secret=secrets.token_urlsafe(16), auto_responses=("AB", "AP"))
        self.as2: As2Peer | None = None
        self.servers: dict[str, PartnerServer] = {}

    async def start(self, *, tracker_url: str, document_token: str,
                    channels_url: str | None = None) -> dict[str, dict[str, str]]:
        """Serve the simulators; the extra settings of each service, by service name."""
        self.ap.webhook_url = f"{tracker_url}/v1/acks/ap_platform"
        if channels_url:
            self.peppol.webhook_url = f"{channels_url}/v1/peppol/events"
        our_key, our_certificate = generate_identity(OUR_AS2_ID)
        self.as2 = As2Peer(as2_id="DEMO-BUYER-AS2", senders={OUR_AS2_ID: our_certificate})
        self.servers = {"chorus_pro": await PartnerServer(self.chorus.app()).start(),
                        "ap_platform": await PartnerServer(self.ap.app()).start(),
                        "as2_peer": await PartnerServer(self.as2.app()).start(),
                        "peppol_ap": await PartnerServer(self.peppol.app()).start()}
        chorus, ap = self.servers["chorus_pro"].url, self.servers["ap_platform"].url
        edi = {"as2_id": OUR_AS2_ID, "private_key": our_key, "certificate": our_certificate,
               "interchange_id": "PARCOURS", "interchange_qualifier": "ZZ",
               "partners": {"demo-buyer": {"as2_id": self.as2.as2_id, "url": f"{self.servers['as2_peer'].url}/as2",
                                           "certificate": self.as2.certificate_pem, "interchange_id": "3012345000010",
                                           "customers": ["*"]}}}
        peppol = {"ap_url": self.servers["peppol_ap"].url, "api_key": self.peppol.api_key,
                  "webhook_secret": self.peppol.webhook_secret, "poll_seconds": 10, "first_check_seconds": 5}
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
            "EDI": json.dumps(edi), "PEPPOL": json.dumps(peppol),
        }
        offered = ["email_link", "email_attachment", "chorus_pro", "ap_platform", "edi", "peppol"]
        return {"channels": channels, "ingest": {"DOCUMENT_READER_TOKEN": document_token},
                "router": {"CHANNELS": json.dumps(offered)}}

    def urls(self) -> dict[str, str]:
        return {name: f"{server.url}/simulator/state" for name, server in self.servers.items()}

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

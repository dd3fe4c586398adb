"""TXT lookups for the sender-domain check, through dnspython's asynchronous resolver: the
system's, or the nameservers the settings name (a company resolver; a local server in tests)."""

from __future__ import annotations

from parcours_channels.config import Settings
from parcours_channels.domain.sender_check import LookupFailed, TxtLookup


def txt_lookup(settings: Settings) -> TxtLookup:
    """`await lookup(name)`: the TXT strings at `name` (each record's strings joined), [] if none."""
    # dnspython (≈ 5 MB) loads with the first check of a sender domain, not with every channels process
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=not settings.dns_nameservers)
    if settings.dns_nameservers:
        resolver.nameservers = list(settings.dns_nameservers)
        resolver.port = settings.dns_port
    resolver.lifetime = settings.dns_timeout

    async def lookup(name: str) -> list[str]:
        try:
            answer = await resolver.resolve(name.rstrip(".") + ".", "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise LookupFailed(f"{name}: {type(exc).__name__}") from exc
        return [b"".join(record.strings).decode("utf-8", errors="replace") for record in answer]

    return lookup

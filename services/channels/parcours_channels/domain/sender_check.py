"""Is a tenant's sender domain set up so that its mail passes SPF, DKIM and DMARC?

Each check reads TXT records through `txt(name) -> list[str]` (a resolver, or anything that
answers like one) and says pass, warn or fail with what it found and what it expected.
DMARC passes on an aligned DKIM signature: the envelope sender is our bounce domain (VERP),
so SPF authenticates our hosts but never aligns with the tenant's From."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from parcours_channels.domain.dkim import dkim_record_name, parse_record

Status = Literal["pass", "warn", "fail"]
TxtLookup = Callable[[str], Awaitable[list[str]]]

SPF_LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4: more DNS-querying terms than this is a permanent error


class LookupFailed(Exception):
    """The resolver could not answer (timeout, SERVFAIL): neither a record nor its absence."""


@dataclass(frozen=True)
class Check:
    name: Literal["spf", "dkim", "dmarc"]
    status: Status
    detail: str
    record_name: str
    found: list[str] = field(default_factory=list)
    expected: str | None = None


@dataclass(frozen=True)
class SenderSetup:
    domain: str
    from_domain: str
    selector: str
    public_key: str
    spf_expected: list[str]


async def check_sender_domain(setup: SenderSetup, txt: TxtLookup) -> list[Check]:
    """SPF, DKIM and DMARC checks of the domain, in that order."""
    return [await _guarded("spf", setup.domain, check_spf(setup, txt)),
            await _guarded("dkim", dkim_record_name(setup.selector, setup.domain), check_dkim(setup, txt)),
            await _guarded("dmarc", f"_dmarc.{setup.from_domain}", check_dmarc(setup, txt))]


async def _guarded(name, record_name: str, check: Awaitable[Check]) -> Check:
    try:
        return await check
    except LookupFailed as exc:
        return Check(name=name, status="fail", detail=f"DNS lookup failed: {exc}", record_name=record_name)


def _spf_records(records: list[str]) -> list[str]:
    return [r for r in records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


async def check_spf(setup: SenderSetup, txt: TxtLookup) -> Check:
    expected = " or ".join(setup.spf_expected)
    found = _spf_records(await txt(setup.domain))

    def result(status: Status, detail: str) -> Check:
        return Check(name="spf", status=status, detail=detail, record_name=setup.domain, found=found,
                     expected=expected)

    if not found:
        return result("fail", f"No SPF record: publish one that includes {expected}.")
    if len(found) > 1:
        return result("fail", "Several SPF records: receivers treat that as a permanent error; merge them into one.")
    terms = found[0].split()[1:]
    if any(t.lower() in ("all", "+all") for t in terms):
        return result("fail", "The record ends in '+all': it lets anyone send as this domain.")
    lookups = [0]
    path = await _spf_reaches(terms, {m.lower() for m in setup.spf_expected}, txt, lookups, via=[setup.domain])
    if lookups[0] > SPF_LOOKUP_LIMIT:
        return result("fail", f"The record needs {lookups[0]} DNS lookups; receivers stop at {SPF_LOOKUP_LIMIT} "
                              "(permanent error).")
    if path is None:
        return result("fail", f"The SPF record does not authorise our sending hosts: add {expected}.")
    through = f" (through {' → '.join(path)})" if len(path) > 1 else ""
    return result("pass", f"Our sending hosts are authorised{through}.")


async def _spf_reaches(terms: list[str], wanted: set[str], txt: TxtLookup, lookups: list[int],
                       via: list[str]) -> list[str] | None:
    """The chain of domains through which `terms` reach one of `wanted`, or None."""
    if any(t.lower().lstrip("+") in wanted for t in terms):
        return via
    for term in terms:
        lowered = term.lower().lstrip("+?~-")
        if lowered.startswith("include:") or lowered.startswith("redirect="):
            target = term.split(":", 1)[1] if lowered.startswith("include:") else term.split("=", 1)[1]
            lookups[0] += 1
            if lookups[0] > SPF_LOOKUP_LIMIT or target in via:
                return None
            nested = _spf_records(await txt(target))
            if len(nested) == 1:
                path = await _spf_reaches(nested[0].split()[1:], wanted, txt, lookups, via=[*via, target])
                if path is not None:
                    return path
        elif lowered.split(":")[0].split("/")[0] in ("a", "mx", "ptr", "exists"):
            lookups[0] += 1
    return None


async def check_dkim(setup: SenderSetup, txt: TxtLookup) -> Check:
    name = dkim_record_name(setup.selector, setup.domain)
    expected = f"v=DKIM1; k=rsa; p={setup.public_key}"
    found = [r for r in await txt(name) if "p=" in r]

    def result(status: Status, detail: str) -> Check:
        return Check(name="dkim", status=status, detail=detail, record_name=name, found=found, expected=expected)

    if not found:
        return result("fail", f"No DKIM key published at {name}.")
    if len(found) > 1:
        return result("fail", f"Several DKIM records at {name}: keep only ours.")
    tags = parse_record(found[0])
    if tags.get("k", "rsa").lower() != "rsa":
        return result("fail", f"The record announces a {tags['k']} key; ours is RSA.")
    if not tags.get("p"):
        return result("fail", "The published key is empty (revoked).")
    if tags["p"] != setup.public_key:
        return result("fail", "The published key is not the one we sign with: publish the expected record.")
    if "y" in tags.get("t", "").lower().split(":"):
        return result("warn", "The key matches but is in test mode (t=y): receivers may ignore failures.")
    return result("pass", "The published key matches the one we sign with.")


async def check_dmarc(setup: SenderSetup, txt: TxtLookup) -> Check:
    name = f"_dmarc.{setup.from_domain}"
    found = [r for r in await txt(name) if r.lower().replace(" ", "").startswith("v=dmarc1")]
    organizational = _organizational(setup.from_domain)
    if not found and organizational != setup.from_domain:  # RFC 7489 §6.6.3: fall back to the organisation's
        name = f"_dmarc.{organizational}"
        found = [r for r in await txt(name) if r.lower().replace(" ", "").startswith("v=dmarc1")]
    expected = "v=DMARC1; p=quarantine (or reject); adkim=r"

    def result(status: Status, detail: str) -> Check:
        return Check(name="dmarc", status=status, detail=detail, record_name=name, found=found, expected=expected)

    if not found:
        return result("fail", f"No DMARC policy at _dmarc.{setup.from_domain}: receivers give the domain no "
                              "protection and rank its mail lower.")
    if len(found) > 1:
        return result("fail", "Several DMARC records: receivers ignore them all; keep one.")
    tags = parse_record(found[0])
    policy = tags.get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        return result("fail", "The DMARC record has no valid p= policy.")
    strict = tags.get("adkim", "r").lower() == "s"
    aligned = setup.from_domain == setup.domain if strict else \
        _organizational(setup.from_domain) == _organizational(setup.domain)
    if not aligned:
        mode = "strict" if strict else "relaxed"
        return result("fail", f"The From domain {setup.from_domain} is not aligned ({mode}) with the signing "
                              f"domain {setup.domain}: DMARC fails.")
    if policy == "none":
        return result("warn", "DKIM is aligned, but p=none only monitors: consider quarantine or reject.")
    return result("pass", f"DKIM is aligned with the From domain and the policy is {policy}.")


def _organizational(domain: str) -> str:
    """The registered domain, approximated as the last two labels (no public suffix list)."""
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])

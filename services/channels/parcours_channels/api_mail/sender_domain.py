"""`/v1/sender-domain`: the domain a tenant's mail goes out from, its DKIM key, the DNS records
to publish, and a check of what is published."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, EmailStr, Field

from parcours_channels.adapters.dns_lookup import txt_lookup
from parcours_channels.adapters.mail.profile import tenant_mail_cache
from parcours_channels.config import Settings
from parcours_channels.domain.dkim import KEY_BITS, dkim_record_name, dkim_record_value, generate_key, new_selector
from parcours_channels.domain.sealing import seal
from parcours_channels.domain.sender_check import SenderSetup, check_sender_domain
from parcours_channels.api_mail.common import CurrentTenant, delete_setting
from parcours_channels.store.tenant_mail import SenderDomain, get_sender_domain, save_sender_domain
from parcours_runtime.problems import Problem, field_error
from parcours_runtime.uow import UnitOfWork

router = APIRouter(prefix="/sender-domain", tags=["sender domain"])

DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
TXT_STRING_MAX = 255  # one character-string of a TXT record; longer values are split in the zone


class SenderDomainWrite(BaseModel):
    domain: str = Field(pattern=DOMAIN_PATTERN, max_length=253, examples=["acme.example"],
                        description="Lower-case domain the mail is signed for (d=).")
    from_address: EmailStr = Field(description="From address: on the domain or one of its subdomains.")
    from_name: str | None = Field(default=None, max_length=200,
                                  description="Display name of From; else the branding name, else the seller.")


class DnsRecord(BaseModel):
    type: Literal["TXT"] = "TXT"
    name: str
    value: str
    strings: list[str] = Field(description=f"The value cut in {TXT_STRING_MAX}-character strings, as a zone file "
                                           "holds a long TXT record.")
    purpose: str


class DkimRead(BaseModel):
    selector: str
    algorithm: Literal["rsa-sha256"] = "rsa-sha256"
    key_bits: int = KEY_BITS


class SenderDomainRead(BaseModel):
    domain: str
    from_address: str
    from_name: str | None
    dkim: DkimRead
    dns_records: list[DnsRecord]


class CheckRead(BaseModel):
    name: Literal["spf", "dkim", "dmarc"]
    status: Literal["pass", "warn", "fail"]
    detail: str
    record_name: str
    found: list[str]
    expected: str | None


class CheckReport(BaseModel):
    domain: str
    ok: bool = Field(description="No check failed (warnings allowed).")
    checks: list[CheckRead]


def _record(name: str, value: str, purpose: str) -> DnsRecord:
    strings = [value[i:i + TXT_STRING_MAX] for i in range(0, len(value), TXT_STRING_MAX)]
    return DnsRecord(name=name, value=value, strings=strings, purpose=purpose)


def _read(row: SenderDomain, spf_expected: list[str]) -> SenderDomainRead:
    from_domain = row.from_address.rpartition("@")[2]
    return SenderDomainRead(
        domain=row.domain, from_address=row.from_address, from_name=row.from_name, dkim=DkimRead(selector=row.selector),
        dns_records=[
            _record(dkim_record_name(row.selector, row.domain), dkim_record_value(row.public_key),
                    "DKIM: the public key receivers verify our signatures with."),
            _record(row.domain, f"v=spf1 {spf_expected[0]} ~all",
                    "SPF: authorises our sending hosts. If the domain has an SPF record already, add "
                    f"'{spf_expected[0]}' to it instead (one SPF record per domain)."),
            _record(f"_dmarc.{from_domain}", "v=DMARC1; p=quarantine; adkim=r",
                    "DMARC: tells receivers what to do with mail that fails; aligned DKIM makes ours pass."),
        ])


def _not_found() -> Problem:
    return Problem(404, "No sender domain: mail goes out from the platform's address. PUT one first.")


@router.get("", response_model=SenderDomainRead, summary="The tenant's sender domain and DNS records to publish")
async def read_sender_domain(request: Request, tenant: CurrentTenant) -> SenderDomainRead:
    async with request.app.state.ctx.sessions() as session:
        row = await get_sender_domain(session, tenant_id=tenant.id)
    if row is None:
        raise _not_found()
    return _read(row, request.app.state.ctx.settings.spf_expected)


@router.put("", response_model=SenderDomainRead, summary="Send from this domain (a DKIM key is made for it)",
            responses={201: {"model": SenderDomainRead}})
async def put_sender_domain(body: SenderDomainWrite, request: Request, response: Response,
                            tenant: CurrentTenant) -> SenderDomainRead:
    """Keeps the DKIM key while the domain stays the same; a new domain gets a new key and selector."""
    from_domain = str(body.from_address).rpartition("@")[2].lower()
    if from_domain != body.domain and not from_domain.endswith("." + body.domain):
        raise Problem(422, "The From address must be on the sender domain (or a subdomain) for DMARC to pass.",
                      errors=[field_error(["from_address"], f"not on {body.domain}", "not_aligned")])
    ctx = request.app.state.ctx
    values = {"domain": body.domain, "from_address": str(body.from_address), "from_name": body.from_name}
    async with UnitOfWork(ctx.sessions) as uow:
        existing = await get_sender_domain(uow.session, tenant_id=tenant.id)
        if existing is None or existing.domain != body.domain:
            values |= await _new_key_values(body.domain, ctx.settings)
        else:
            values |= {"selector": existing.selector, "public_key": existing.public_key,
                       "sealed_private_key": existing.sealed_private_key}
        row = await save_sender_domain(uow.session, tenant_id=tenant.id, **values)
        await uow.commit()
    tenant_mail_cache(ctx).forget(tenant.id)
    response.status_code = 201 if existing is None else 200
    return _read(row, ctx.settings.spf_expected)


@router.post("/dkim-key", response_model=SenderDomainRead, summary="Rotate the DKIM key (new selector)")
async def rotate_dkim_key(request: Request, tenant: CurrentTenant) -> SenderDomainRead:
    """Signs with a new key from now on: publish its record before mail goes out (the previous
    selector's record can go once mail signed with it has been delivered)."""
    ctx = request.app.state.ctx
    async with UnitOfWork(ctx.sessions) as uow:
        existing = await get_sender_domain(uow.session, tenant_id=tenant.id)
        if existing is None:
            raise _not_found()
        row = await save_sender_domain(uow.session, tenant_id=tenant.id, domain=existing.domain,
                                       from_address=existing.from_address, from_name=existing.from_name,
                                       **await _new_key_values(existing.domain, ctx.settings))
        await uow.commit()
    tenant_mail_cache(ctx).forget(tenant.id)
    return _read(row, ctx.settings.spf_expected)


@router.delete("", status_code=204, summary="Send from the platform's address again")
async def delete_sender_domain(request: Request, tenant: CurrentTenant) -> Response:
    return await delete_setting(request.app.state.ctx, SenderDomain, tenant_id=tenant.id, missing=_not_found())


@router.get("/check", response_model=CheckReport, summary="Check the domain's SPF, DKIM and DMARC records")
async def check_domain(request: Request, tenant: CurrentTenant) -> CheckReport:
    """Looks the records up now (DNS caches may lag behind a change for the records' TTL)."""
    ctx = request.app.state.ctx
    async with ctx.sessions() as session:
        row = await get_sender_domain(session, tenant_id=tenant.id)
    if row is None:
        raise _not_found()
    setup = SenderSetup(domain=row.domain, from_domain=row.from_address.rpartition("@")[2].lower(),
                        selector=row.selector, public_key=row.public_key, spf_expected=ctx.settings.spf_expected)
    checks = await check_sender_domain(setup, txt_lookup(ctx.settings))
    return CheckReport(domain=row.domain, ok=all(c.status != "fail" for c in checks),
                       checks=[CheckRead(**vars(c)) for c in checks])


async def _new_key_values(domain: str, settings: Settings) -> dict:
    key = await asyncio.to_thread(generate_key, domain, new_selector(date.today()))  # ~0.1 s of CPU
    return {"selector": key.selector, "public_key": key.public_key,
            "sealed_private_key": seal(key.private_pem, settings.key_encryption_secrets())}

"""AS2 (RFC 4130) sending with pyas2lib: sign, encrypt, ask for a signed MDN (synchronous, or
posted later to our MDN URL), and read that MDN: its signature checked against the partner's
certificate, its disposition, and its MIC against the one computed when signing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from email import message_from_bytes
from email.utils import make_msgid

import httpx

from parcours_channels.domain.edi_profiles import As2Partner, EdiSettings

if TYPE_CHECKING:
    import pyas2lib

log = logging.getLogger(__name__)

PROCESSED = "processed"
DUPLICATE = "duplicate-document"  # the partner already processed this Message-ID: the resend of a lost answer


@dataclass(frozen=True)
class Built:
    message_id: str  # without angle brackets
    headers: dict[str, str]
    body: bytes
    message: pyas2lib.Message  # kept to check the MDN (its MIC)


@dataclass(frozen=True)
class MdnVerdict:
    """What the partner's MDN says. `acked` when it processed the message as sent (MIC equal)."""

    acked: bool
    verified: bool  # signature valid and the MDN answers our message
    disposition: str
    detail: str | None
    mdn_id: str | None


class As2Unanswered(Exception):
    """The partner did not answer in time: it may or may not have the message."""


def message_id_for(dispatch_id: object, domain: str) -> str:
    """The AS2 Message-ID of a dispatch: the same on every resend, so the partner deduplicates."""
    return f"{dispatch_id}@{domain}"


def _pyas2lib():
    """pyas2lib and its crypto backend (≈ 11 MB), loaded with the first AS2 message or MDN: a channels
    process whose tenants have no AS2 partner never carries them."""
    from parcours_channels.adapters.edi import compat

    compat.load_oscrypto()  # before pyas2lib loads oscrypto
    import pyas2lib

    return pyas2lib


def _organization(settings: EdiSettings) -> pyas2lib.Organization:
    key_pem = settings.private_key.get_secret_value().encode() + b"\n" + settings.certificate.encode()
    password = settings.private_key_password.get_secret_value() or None
    return _pyas2lib().Organization(as2_name=settings.as2_id, sign_key=key_pem, sign_key_pass=password,
                        domain=settings.message_id_domain, mdn_url=settings.mdn_url or None)


def _partner(partner: As2Partner) -> pyas2lib.Partner:
    return _pyas2lib().Partner(as2_name=partner.as2_id, verify_cert=partner.certificate.encode(),
                   encrypt_cert=partner.certificate.encode(), sign=True, encrypt=True, enc_alg=partner.encryption,
                   digest_alg=partner.digest, mdn_mode=partner.mdn_mode.upper(), mdn_digest_alg=partner.digest)


def build_message(settings: EdiSettings, partner: As2Partner, payload: bytes, *, dispatch_id: object,
                  filename: str) -> Built:
    """The signed and encrypted AS2 message (CPU-bound: run it in a thread)."""
    message = _pyas2lib().Message(_organization(settings), _partner(partner))
    message.build(payload, filename=filename, subject=f"INVOIC {filename}", content_type="application/EDIFACT",
                  disposition_notification_to=f"edi@{settings.message_id_domain}",
                  message_id=str(dispatch_id))
    headers = {key: str(value) for key, value in message.headers.items()}
    return Built(message_id=message.message_id, headers=headers, body=message.content, message=message)


def read_mdn(built: Built, headers: httpx.Headers, body: bytes) -> MdnVerdict:
    """Check and read a synchronous MDN (CPU-bound: run it in a thread)."""
    return _verdict(raw_http(headers, body), built.message_id, built.message)


def raw_http(headers, body: bytes) -> bytes:
    """What pyas2lib parses: the HTTP headers, a blank line, the body."""
    return "".join(f"{key}: {value}\r\n" for key, value in headers.items()).encode() + b"\r\n" + body


def original_message_id(raw: bytes) -> str | None:
    """The Message-ID an MDN answers, before anything is checked (to find what it answers)."""
    mdn = _pyas2lib().Mdn()
    try:
        mdn.payload = message_from_bytes(raw)
        message_id, _ = mdn.detect_mdn()
    except Exception:  # not an MDN, or not MIME at all
        return None
    return message_id or None


@dataclass(frozen=True)
class Original:
    """What an async MDN is checked against: the message we sent (its id and MIC) and its partner."""

    message_id: str
    mic: bytes
    receiver: pyas2lib.Partner


def read_async_mdn(raw: bytes, *, partner: As2Partner, message_id: str, mic: str) -> MdnVerdict:
    """Check and read an MDN posted later (CPU-bound): signed by `partner`, answering `message_id`
    with the MIC we computed when signing it."""
    return _verdict(raw, message_id, Original(message_id=message_id, mic=mic.encode(), receiver=_partner(partner)))


def _verdict(raw: bytes, message_id: str, original) -> MdnVerdict:
    mdn = _pyas2lib().Mdn()
    status, detail = mdn.parse(raw, find_message_cb=lambda answered, recipient: (
        original if answered == message_id else None))
    status = (status or "").strip()
    verified = status.lower() != "failed/failure"  # pyas2lib's word for an MDN it could not trust or match
    disposition, _, modifier = status.partition("/")
    detail = (detail or modifier or "").strip() or None
    acked = verified and (status.lower() == PROCESSED or (detail or "").lower() == DUPLICATE)
    return MdnVerdict(acked=acked, verified=verified, disposition=status, detail=detail,
                      mdn_id=getattr(mdn, "message_id", None) or make_msgid().strip("<>"))


async def send(client: httpx.AsyncClient, settings: EdiSettings, partner: As2Partner, built: Built) -> MdnVerdict | None:
    """POST the message; the answer is its MDN (None for a partner in async mode, which took it and
    posts its MDN later). Raises As2Unanswered on a timeout, httpx errors
    for a connection that failed, and TransientAnswer for a 5xx/429."""
    try:
        response = await client.post(partner.url, content=built.body, headers=built.headers,
                                     timeout=settings.timeout_seconds)
    except httpx.TimeoutException as exc:
        raise As2Unanswered(f"no answer from {partner.as2_id} within {settings.timeout_seconds:g}s") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientAnswer(f"{partner.as2_id} answered HTTP {response.status_code}")
    if response.status_code >= 300:
        return MdnVerdict(acked=False, verified=False, disposition=f"http/{response.status_code}",
                          detail=f"{partner.as2_id} refused the message: HTTP {response.status_code}", mdn_id=None)
    if partner.mdn_mode == "async":
        return None
    return await asyncio.to_thread(read_mdn, built, response.headers, response.content)


class TransientAnswer(Exception):
    """The partner's server failed (5xx) or asked to slow down (429): try again later."""

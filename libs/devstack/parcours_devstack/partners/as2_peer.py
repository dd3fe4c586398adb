"""A trading partner's AS2 receiver (RFC 4130), for tests and `make run`.

`POST /as2` takes an AS2 message the way a real partner does: pyas2lib decrypts it and checks
the sender's signature, pydifact parses the EDIFACT interchange, which must hold INVOIC D96A
messages; the answer is a signed MDN (processed, with the MIC), or an error MDN: synchronous,
or posted to the sender's `Receipt-Delivery-Option` URL when it asks for an async MDN (the HTTP
answer is then an empty 200). A Message-ID already processed is not processed again: its first
MDN is answered again.

Behaviours a test asks for: `fail_next(n)` answers 503 n times, `reject_next(reason)` answers
an error MDN, `silent` never answers in time, `hold()` processes then waits before answering
(to crash the sender in between), `mdn_delay` waits before posting an async MDN; `mdn_posts`
lists the status of each async MDN post."""

from __future__ import annotations

import asyncio
import datetime
import warnings
from dataclasses import dataclass, field

import httpx

from fastapi import FastAPI, Request, Response
from parcours_channels.adapters.edi import compat  # noqa: F401  (oscrypto on OpenSSL ≥ 3.0.10)
from pyas2lib import Mdn, Message, Organization, Partner
from pydifact.segmentcollection import Interchange

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def generate_identity(common_name: str, *, days: int = 365) -> tuple[str, str]:
    """A demo RSA key and self-signed certificate (PEM key, PEM certificate) for AS2 signing and encryption."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class ReceivedInvoice:
    message_id: str
    sender: str
    number: str
    type_code: str
    total_incl_tax: str | None
    segments: list[str]
    interchange: str


@dataclass
class As2Peer:
    """The partner: its identity and the senders it trades with (AS2 id → their certificate PEM)."""

    as2_id: str = "BUYER-AS2"
    senders: dict[str, str] = field(default_factory=dict)
    key_pem: str = ""
    certificate_pem: str = ""
    answer_timeout: float = 3600.0  # how long `silent` keeps a request waiting
    posts: int = 0  # every POST, duplicates included
    invoices: dict[str, ReceivedInvoice] = field(default_factory=dict)  # by Message-ID, processed once
    rejected: list[str] = field(default_factory=list)
    silent: bool = False
    _failures: int = 0
    _reject_reason: str | None = None
    mdn_delay: float = 0.0
    mdn_posts: list[int] = field(default_factory=list)
    _answers: dict[str, tuple[dict[str, str], bytes, str | None]] = field(default_factory=dict)
    _tasks: set = field(default_factory=set)
    _hold: asyncio.Event | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if not self.key_pem:
            self.key_pem, self.certificate_pem = generate_identity(self.as2_id)

    def fail_next(self, times: int = 1) -> None:
        self._failures = times

    def reject_next(self, reason: str = "unexpected-processing-error") -> None:
        self._reject_reason = reason

    def hold(self) -> asyncio.Event:
        """Process the next message, then keep its answer until the returned event is set
        (`held` is set once it is processed)."""
        self._hold = asyncio.Event()
        self.held.clear()
        return self._hold

    def _organization(self) -> Organization:
        return Organization(as2_name=self.as2_id, sign_key=(self.key_pem + self.certificate_pem).encode(),
                            decrypt_key=(self.key_pem + self.certificate_pem).encode())

    def _partner(self, as2_id: str) -> Partner | None:
        certificate = self.senders.get(as2_id)
        if certificate is None:
            return None
        return Partner(as2_name=as2_id, verify_cert=certificate.encode(), encrypt_cert=certificate.encode(),
                       sign=True, encrypt=True)

    def receive(self, raw: bytes) -> tuple[int, dict[str, str], bytes, str | None]:
        """Parse, check and record one AS2 message; (status, MDN headers, MDN, the URL of an async MDN)."""
        inbound = Message()
        status, problem, mdn = inbound.parse(raw, find_org_cb=lambda as2_id: self._organization()
                                             if as2_id == self.as2_id else None,
                                             find_partner_cb=self._partner)
        if mdn is None:
            return 400, {}, b"an MDN must be requested", None
        if status == "processed":
            reason = self._reject_reason or self._check_invoic(inbound)
            self._reject_reason = None
            if reason is not None:
                self.rejected.append(inbound.message_id)
                mdn = Mdn(mdn_mode=mdn.mdn_mode, digest_alg=mdn.digest_alg, mdn_url=mdn.mdn_url)
                mdn.build(message=inbound, status="processed/Error", detailed_status=reason)
        url = mdn.mdn_url if mdn.mdn_mode == "ASYNC" else None
        return 200, {key: str(value) for key, value in mdn.headers.items()}, mdn.content, url

    def _check_invoic(self, inbound: Message) -> str | None:
        text = inbound.content.decode("utf-8", errors="replace")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                interchange = Interchange.from_str(text)
                messages = list(interchange.get_messages())
        except Exception as exc:  # any syntax error of the interchange
            return f"edifact-syntax-error: {type(exc).__name__}"
        if not messages or any(m.type != "INVOIC" or m.identifier[1:3] != ["D", "96A"] for m in messages):
            return "not-an-invoic-d96a"
        message = messages[0]
        bgm = next(iter(message.get_segments("BGM")), None)
        if bgm is None or len(bgm.elements) < 2:
            return "bgm-missing"
        total = next((s.elements[0][1] for s in message.get_segments("MOA")
                      if isinstance(s.elements[0], list) and s.elements[0][0] == "77"), None)
        self.invoices[inbound.message_id] = ReceivedInvoice(
            message_id=inbound.message_id, sender=inbound.sender.as2_name, number=bgm.elements[1],
            type_code=bgm.elements[0] if isinstance(bgm.elements[0], str) else bgm.elements[0][0],
            total_incl_tax=total, segments=[s.tag for s in message.segments], interchange=text)
        return None

    def app(self) -> FastAPI:
        app = FastAPI(title="AS2 partner simulator")

        @app.post("/as2")
        async def as2(request: Request) -> Response:
            self.posts += 1
            if self._failures > 0:
                self._failures -= 1
                return Response("busy", status_code=503)
            if self.silent:
                await asyncio.sleep(self.answer_timeout)
            body = await request.body()
            message_id = request.headers.get("message-id", "").strip().strip("<>")
            if message_id in self._answers:  # a resend: never processed twice, the first MDN again
                headers, content, url = self._answers[message_id]
                return self._answer(headers, content, url)
            raw = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items()).encode() + b"\r\n" + body
            status, headers, content, url = await asyncio.to_thread(self.receive, raw)
            if status == 200 and message_id:
                self._answers[message_id] = (headers, content, url)
            if self._hold is not None:
                hold, self._hold = self._hold, None
                self.held.set()
                await hold.wait()
            return self._answer(headers, content, url) if status == 200 else Response(content, status_code=status)

        @app.get("/simulator/state")
        async def state():
            return {"posts": self.posts, "rejected": self.rejected, "mdn_posts": self.mdn_posts,
                    "invoices": [{"message_id": i.message_id, "sender": i.sender, "number": i.number,
                                  "total_incl_tax": i.total_incl_tax} for i in self.invoices.values()]}

        return app

    def _answer(self, headers: dict[str, str], content: bytes, url: str | None) -> Response:
        if url is None:
            return Response(content, status_code=200, headers=headers)
        task = asyncio.create_task(self._post_mdn(url, headers, content))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Response(b"", status_code=200)

    async def _post_mdn(self, url: str, headers: dict[str, str], content: bytes) -> None:
        """Deliver the async MDN as AS2 software does: retried a few times while the sender answers
        404 or 5xx (it may not have recorded its message yet) or cannot be reached; the last answer
        is kept in `mdn_posts`."""
        await asyncio.sleep(self.mdn_delay)
        status = 0
        for attempt in range(6):
            try:
                async with httpx.AsyncClient(timeout=30) as client:
                    status = (await client.post(url, content=content, headers=headers)).status_code
            except httpx.HTTPError:
                status = 0
            if status not in (0, 404) and status < 500:
                break
            await asyncio.sleep(0.5 * 2 ** attempt)
        self.mdn_posts.append(status)

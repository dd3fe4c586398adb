"""The MIME message of one invoice email: multipart/alternative text + HTML (with the tenant's
logo as a related part when it travels inline), the PDF attached when there is one; headers as
RFC 5322 wants them; From the tenant's sender domain and DKIM-signed with its key when it has one."""

from __future__ import annotations

import binascii
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.contentmanager import ContentManager, raw_data_manager, set_text_content
from email.generator import BytesGenerator
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from io import BytesIO
from typing import TYPE_CHECKING

from parcours_channels.adapters.mail.render import LOGO_CID, RenderedEmail, render_email
from parcours_channels.config import Settings
from parcours_channels.domain.dkim import DkimKey, signature_header
from parcours_channels.domain.wording import DEFAULT_LANGUAGE, one_line
from parcours_contracts import DispatchRequested, Recipient
from parcours_runtime.links import issue_link_token

if TYPE_CHECKING:
    from parcours_channels.adapters.mail.profile import InlineImage, TenantMail


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"


_VERBATIM = ("message-id", "dkim-signature")
_PARSED_MAX = 256  # distinct header values kept parsed (Content-Type, MIME-Version, a tenant's From…)


class _HeaderClasses(HeaderRegistry):
    """The stdlib makes a new class with type() on every header set or read; one per name does."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        if (cls := self._classes.get(key)) is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


class _ComposePolicy(EmailPolicy):
    """The default policy, parsing each distinct header value once: most of a message's headers
    (the parts' Content-Type and Content-Transfer-Encoding, MIME-Version, From, Content-Language)
    are the same in every message, and parsing them dominated composing one. Parsed headers are
    immutable (a change stores a new one), so messages may share them."""

    def header_store_parse(self, name: str, value):
        if type(value) is not str:
            return super().header_store_parse(name, value)
        key = (name, value)
        parsed = _PARSED.get(key)
        if parsed is None:
            parsed = super().header_store_parse(name, value)[1]
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[key] = parsed
        return name, parsed


def _set_text_content(message, text: str, subtype: str = "plain", charset: str = "utf-8", cte: str | None = None,
                      **others) -> None:
    """The stdlib's set_content for text, quoted-printable through binascii (C) rather than quoprimime
    (Python, ≈ 4 times slower): the same headers and decoded text; soft line breaks may fall a character
    apart (both within RFC 2045's 76)."""
    if cte != "quoted-printable" or charset != "utf-8" or any(value is not None for value in others.values()):
        set_text_content(message, text, subtype, charset, cte, **others)
        return
    message["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    message["Content-Transfer-Encoding"] = "quoted-printable"
    lines = text.encode("utf-8").splitlines()  # as the stdlib does: every line ending \n, the last one too
    message.set_payload(binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True).decode("ascii"))


_CONTENT = ContentManager()
_CONTENT.get_handlers, _CONTENT.set_handlers = dict(raw_data_manager.get_handlers), dict(raw_data_manager.set_handlers)
_CONTENT.add_set_handler(str, _set_text_content)

_PARSED: dict[tuple[str, str], object] = {}
_FOLDED: dict[tuple[str, int], tuple[object, bytes]] = {}  # (name, id of a shared header) → (it, its wire bytes)
COMPOSE_POLICY = _ComposePolicy(header_factory=_HeaderClasses(), content_manager=_CONTENT)


class _WirePolicy(EmailPolicy):
    """SMTP line endings; the Message-ID is never folded: folding is legal, but parsers then
    keep the leading space, and the Message-ID is what bounces and replies are matched on. The
    DKIM-Signature goes out exactly as it was folded when it was computed."""

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _VERBATIM:
            return f"{name}: {str(value).strip()}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _VERBATIM:
            return self.fold(name, value).encode("ascii")
        if _PARSED.get((name, str(value))) is not value:
            return super().fold_binary(name, value)
        # a shared parsed header (see _ComposePolicy): folded the same in every message, so once
        if (folded := _FOLDED.get((name, id(value)))) is None or folded[0] is not value:
            folded = _FOLDED[(name, id(value))] = (value, super().fold_binary(name, value))
            if len(_FOLDED) > _PARSED_MAX:
                _FOLDED.clear()
        return folded[1]


WIRE_POLICY = _WirePolicy(linesep="\r\n", header_factory=COMPOSE_POLICY.header_factory)


class SignedMessage(EmailMessage):
    """A message whose wire bytes were fixed when it was DKIM-signed (they are what the signature covers)."""
    signed_wire: bytes | None = None


def _boundary() -> str:
    """Drawn as the stdlib draws one: "=" * 15 + 19 digits + "==". A line "--=" cannot occur in our
    parts: their bodies are quoted-printable or base64 ("=" is written =3D in the one, is only
    padding in the other) and header lines start with a field name or white space."""
    return f"==============={random.randrange(sys.maxsize):019d}=="


# One boundary per kind of multipart for the process's life, so the multiparts' Content-Type values
# are the same in every message (parsed once, see _ComposePolicy). Left to the generator, every
# message drew its own, searched its parts for it (a regex compiled per boundary) and rewrote and
# parsed each Content-Type again (set_boundary): ≈ 10 % of channels' CPU. Distinct per kind (never
# a prefix of each other: same length) because the multiparts nest.
_BOUNDARIES = {kind: _boundary() for kind in ("mixed", "alternative", "related")}


class _WireGenerator(BytesGenerator):
    """For a multipart without a boundary (not composed here): one drawn without searching the text."""

    @classmethod
    def _make_boundary(cls, text=None):
        return _boundary()


def to_wire(message: EmailMessage) -> bytes:
    """The bytes handed to SMTP: 7-bit clean (bodies are quoted-printable or base64)."""
    signed = getattr(message, "signed_wire", None)
    if signed is not None:
        return signed
    out = BytesIO()
    _WireGenerator(out, mangle_from_=False, policy=WIRE_POLICY).flatten(message, unixfrom=False)
    return out.getvalue()


def tracked_link(request: DispatchRequested, recipient: Recipient, settings: Settings) -> str:
    """The recipient's own link to the invoice page; tracker records the click."""
    token = issue_link_token(
        settings.link_secret.get_secret_value(), tenant_id=request.tenant_id, invoice_id=request.invoice_id,
        dispatch_id=request.dispatch_id, recipient=recipient.email, ttl_seconds=settings.link_ttl_days * 86400,
    )
    return f"{settings.tracker_public_url.rstrip('/')}/l/{token}"


# Headers unique to each message (To, Subject, Date) are written ready for the wire when that is
# simple, instead of going through the stdlib's header parser and folder (a third of composing).
_LINE = 78
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~ ")
_WORD_BYTES = 39  # → 52 base64 characters: an encoded word of 64, within 75 (RFC 2047) and a line after "Subject: "


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 UTF-8 "B" encoded words, never splitting a character."""
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return [f"=?utf-8?b?{binascii.b2a_base64(word, newline=False).decode('ascii')}?=" for word in words]


def _folded(name: str, words: list[str]) -> str | None:
    """Words joined by spaces, folded before a word where the line would pass 78 columns."""
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) + (len(name) + 2 if not lines else 0) > _LINE:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    if len(lines[0]) + len(name) + 2 > _LINE or any(len(other) + 1 > _LINE for other in lines[1:]):
        return None
    return "\r\n ".join(lines)


def _ready_text(name: str, text: str) -> str | None:
    """An unstructured header value (Subject) as it goes on the wire, or None: let the stdlib do it."""
    if "\r" in text or "\n" in text:
        return None
    if text.isascii() and text.isprintable() and "=?" not in text:  # "=?" would read as an encoded word
        return _folded(name, text.split(" ")) if "  " not in text and text == text.strip() else None
    return _folded(name, _encoded_words(text))


def _ready_address(name: str, display: str, address: str) -> str | None:
    """`Display <address>` (To) as it goes on the wire, or None: let the stdlib do it."""
    if not address.isascii() or not address.isprintable() or any(c in address for c in ' <>()",;\\'):
        return None
    if not display:
        return address if len(address) + len(name) + 2 <= _LINE else None
    if "\r" in display or "\n" in display or "=?" in display:
        return None
    if display.isascii() and display.isprintable():
        quoted = display if set(display) <= _ATEXT and display == display.strip() and "  " not in display \
            else '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
        words = [*quoted.split(" "), f"<{address}>"] if quoted is display else [quoted, f"<{address}>"]
    else:  # one encoded word only: parsers put a space between the words of a phrase
        if len(encoded := _encoded_words(display)) > 1:
            return None
        words = [*encoded, f"<{address}>"]
    return _folded(name, words)


def _set_header(message: EmailMessage, name: str, ready: str | None, value: Callable[[], object]) -> None:
    """`ready` as is, else what `value()` makes of it through the stdlib (made only then: an Address
    parses its addr-spec, a tenth of composing a message)."""
    if ready is None:
        message[name] = value()
    else:
        message.set_raw(name, ready)


def compose_message(*, rendered: RenderedEmail, sender: str | Address, recipient: Recipient, message_id: str,
                    attachment: Attachment | None = None, sent_at: datetime | None = None,
                    logo: InlineImage | None = None) -> EmailMessage:
    """A ready-to-send message from rendered content."""
    message = SignedMessage(policy=COMPOSE_POLICY)
    message["From"] = sender
    display = one_line(recipient.name or "")
    _set_header(message, "To", _ready_address("To", display, recipient.email),
                lambda: Address(display_name=display, addr_spec=recipient.email))
    _set_header(message, "Subject", _ready_text("Subject", rendered.subject), lambda: rendered.subject)
    message.set_raw("Date", format_datetime(sent_at or datetime.now(timezone.utc)))
    message["Message-ID"] = message_id
    message["Content-Language"] = rendered.language
    # Quoted-printable keeps the message 7-bit: no reliance on the relay's 8BITMIME.
    message.set_content(rendered.text, cte="quoted-printable")
    message.make_alternative(boundary=_BOUNDARIES["alternative"])
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    if logo is not None:  # the HTML part becomes multipart/related around it
        maintype, _, subtype = logo.media_type.partition("/")
        html = message.get_body(("html",))
        html.make_related(boundary=_BOUNDARIES["related"])
        html.add_related(logo.data, maintype=maintype, subtype=subtype, cid=f"<{LOGO_CID}>", disposition="inline")
    if attachment is not None:  # turns the message into multipart/mixed around the alternative
        message.make_mixed(boundary=_BOUNDARIES["mixed"])
        message.add_attachment(attachment.content, maintype=attachment.maintype, subtype=attachment.subtype,
                               filename=attachment.filename)
    return message


def sign_message(message: SignedMessage, key: DkimKey) -> SignedMessage:
    """Sign `message` as it goes on the wire, the DKIM-Signature first; nothing may change it afterwards."""
    wire = to_wire(message)
    value = signature_header(wire, key)
    message.set_raw("DKIM-Signature", value)  # for readers of the message; the wire has it on top
    message.signed_wire = f"DKIM-Signature: {value}\r\n".encode("ascii") + wire
    return message


def invoice_message(request: DispatchRequested, recipient: Recipient, *, message_id: str, settings: Settings,
                    attachment: Attachment | None = None, tenant: TenantMail | None = None) -> EmailMessage:
    """The message one recipient of a dispatch gets: rendered in the customer's language with the
    tenant's branding and templates, linked, addressed, signed for the tenant's domain."""
    brand = tenant.brand if tenant else None
    rendered = render_email(invoice=request.invoice, purpose=request.purpose, reminder=request.reminder,
                            link=tracked_link(request, recipient, settings), recipient_name=recipient.name,
                            language=request.language or DEFAULT_LANGUAGE, penalties=request.penalties,
                            brand=brand, overrides=tenant.overrides if tenant else ())
    sender: str | Address = settings.mail_from
    if tenant is not None and tenant.sender is not None:
        display = tenant.sender.name or (brand.name if brand and brand.name else request.invoice.seller_name)
        sender = Address(display_name=one_line(display), addr_spec=tenant.sender.address)
    message = compose_message(rendered=rendered, sender=sender, recipient=recipient, message_id=message_id,
                              attachment=attachment, logo=tenant.logo if tenant else None)
    key = tenant.sender.dkim if tenant is not None and tenant.sender is not None else _platform_key(settings)
    return sign_message(message, key) if key is not None else message


def _platform_key(settings: Settings) -> DkimKey | None:
    """The platform's own key, for mail from `mail_from` (None when not configured)."""
    if settings.dkim_selector is None or settings.dkim_private_key is None:
        return None
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2]
    return _key(domain, settings.dkim_selector, settings.dkim_private_key.get_secret_value())


@lru_cache(maxsize=4)
def _key(domain: str, selector: str, pem: str) -> DkimKey:
    return DkimKey(domain=domain, selector=selector, private_pem=pem.encode(), public_key="")

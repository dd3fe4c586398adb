"""The MIME message of one invoice email: multipart/alternative text + HTML (with the tenant's
logo as a related part when it travels inline), the PDF attached when there is one; headers as
RFC 5322 wants them; From the tenant's sender domain and DKIM-signed with its key when it has one.

The message is written straight to the bytes SMTP carries: our messages always have the same few
shapes, and the stdlib's object model (set_content, make_alternative, the generator's walk and
header refolding) cost a quarter of channels' CPU. The stdlib still parses and folds the header
values that are not simple (an address with a non-ASCII name, an attachment's filename), and reads
a message back for whoever asks for a header."""

from __future__ import annotations

import base64
import binascii
import email
import random
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from functools import lru_cache
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


@dataclass(frozen=True)
class ComposedMessage:
    """A message as it goes to SMTP: `wire` (CRLF line ends, 7-bit: bodies are quoted-printable or
    base64), the address of its From and of its one recipient. Reading a header parses the bytes
    (tests, logs); sending never does."""
    wire: bytes
    sender: str
    recipient: str

    def parsed(self) -> EmailMessage:
        return email.message_from_bytes(self.wire, policy=email.policy.default)

    def __getitem__(self, name: str):
        return self.parsed()[name]


def _boundary() -> str:
    """Drawn as the stdlib draws one: "=" * 15 + 19 digits + "==". A line "--=" cannot occur in our
    parts: their bodies are quoted-printable or base64 ("=" is written =3D in the one, is only
    padding in the other) and header lines start with a field name or white space."""
    return f"==============={random.randrange(sys.maxsize):019d}=="


# One boundary per kind of multipart for the process's life (nothing in a part can match one, see
# _boundary); distinct per kind, never a prefix of each other (same length), because they nest.
_BOUNDARIES = {kind: _boundary().encode("ascii") for kind in ("mixed", "alternative", "related")}


def _quoted_printable(text: str) -> bytes:
    """`text` as a quoted-printable UTF-8 body, every line ended by CRLF (the last one too), lines of 76
    at most; binascii's encoder is C (the stdlib's quoprimime is Python)."""
    lines = text.encode("utf-8").splitlines()
    return binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True).replace(b"\n", b"\r\n")


def _text_part(text: str, subtype: str) -> bytes:
    return (b"Content-Type: text/" + subtype.encode("ascii") + b'; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + _quoted_printable(text))


def _base64_part(fields: bytes, data: bytes) -> bytes:
    """A binary part: its own header fields, then `data` in base64 lines of 76."""
    return fields + b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data).replace(b"\n", b"\r\n")


def _multipart(kind: str, parts: list[bytes]) -> bytes:
    """A multipart entity: its Content-Type, then each part after a delimiter line (the CRLF before a
    delimiter belongs to it, RFC 2046 5.1.1), then the closing delimiter."""
    delimiter = b"--" + _BOUNDARIES[kind]
    return (b"Content-Type: multipart/" + kind.encode("ascii") + b';\r\n boundary="' + _BOUNDARIES[kind] + b'"\r\n\r\n'
            + b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts) + delimiter + b"--\r\n")


def _stdlib_field(name: str, value: str | Address) -> bytes:
    """A header field as the stdlib parses and folds it for SMTP (encoded words, quoting, 78 columns)."""
    return SMTP.header_factory(name, value).fold(policy=SMTP).encode("ascii")


@lru_cache(maxsize=256)
def _sender_field(sender: str) -> tuple[bytes, str]:
    """From, folded once per sender (the same on every message of a tenant), and its address."""
    return _stdlib_field("From", sender), parseaddr(sender)[1]


@lru_cache(maxsize=2)
def _date_field(second: int) -> bytes:
    return f"Date: {format_datetime(datetime.fromtimestamp(second, timezone.utc))}\r\n".encode("ascii")


def _media_type(media_type: str) -> bytes:
    maintype, _, subtype = media_type.partition("/")
    if not (maintype.isascii() and maintype.isalnum() and subtype.isascii()
            and subtype.replace("-", "").replace("+", "").replace(".", "").isalnum()):
        raise ValueError(f"not a media type: {media_type!r}")
    return media_type.encode("ascii")


def _disposition_field(filename: str) -> bytes:
    """Content-Disposition of an attachment: the stdlib quotes the filename, or encodes it (RFC 2231)."""
    part = MIMEPart(policy=SMTP)
    part["Content-Disposition"] = "attachment"
    part.set_param("filename", filename, header="Content-Disposition")
    return SMTP.fold_binary("Content-Disposition", part["Content-Disposition"])


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


def compose_message(*, rendered: RenderedEmail, sender: str | Address, recipient: Recipient, message_id: str,
                    attachment: Attachment | None = None, sent_at: datetime | None = None,
                    logo: InlineImage | None = None) -> ComposedMessage:
    """A ready-to-send message from rendered content."""
    from_field, sender_address = _sender_field(str(sender))
    display = one_line(recipient.name or "")
    to = _ready_address("To", display, recipient.email)
    subject = _ready_text("Subject", rendered.subject)
    # The Message-ID is never folded: parsers would keep the leading space, and bounces and replies are
    # matched on it.
    head = [
        from_field,
        f"To: {to}\r\n".encode("ascii") if to is not None
        else _stdlib_field("To", Address(display_name=display, addr_spec=recipient.email)),
        f"Subject: {subject}\r\n".encode("ascii") if subject is not None else _stdlib_field("Subject", rendered.subject),
        _date_field(int(datetime.now(timezone.utc).timestamp())) if sent_at is None
        else f"Date: {format_datetime(sent_at)}\r\n".encode("ascii"),
        f"Message-ID: {one_line(message_id)}\r\n".encode("ascii"),
        f"Content-Language: {rendered.language}\r\n".encode("ascii"),
        b"MIME-Version: 1.0\r\n",
    ]
    # Quoted-printable keeps the message 7-bit: no reliance on the relay's 8BITMIME.
    html = _text_part(rendered.html, "html")
    if logo is not None:  # the HTML part becomes multipart/related around it
        html = _multipart("related", [html, _base64_part(
            b"Content-Type: " + _media_type(logo.media_type) + b"\r\nContent-Disposition: inline\r\n"
            b"Content-ID: <" + LOGO_CID.encode("ascii") + b">\r\n", logo.data)])
    body = _multipart("alternative", [_text_part(rendered.text, "plain"), html])
    if attachment is not None:  # multipart/mixed around the alternative
        body = _multipart("mixed", [body, _base64_part(
            b"Content-Type: " + _media_type(f"{attachment.maintype}/{attachment.subtype}") + b"\r\n"
            + _disposition_field(attachment.filename), attachment.content)])
    return ComposedMessage(wire=b"".join(head) + body, sender=sender_address, recipient=recipient.email)


def sign_message(message: ComposedMessage, key: DkimKey) -> ComposedMessage:
    """`message` signed as it goes on the wire, the DKIM-Signature on top, exactly as it was folded when
    computed (it covers the bytes below it: nothing may change them afterwards)."""
    value = signature_header(message.wire, key)
    return replace(message, wire=f"DKIM-Signature: {value}\r\n".encode("ascii") + message.wire)


def invoice_message(request: DispatchRequested, recipient: Recipient, *, message_id: str, settings: Settings,
                    attachment: Attachment | None = None, tenant: TenantMail | None = None) -> ComposedMessage:
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

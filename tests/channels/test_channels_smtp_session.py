"""Channels' own SMTP session against a relay that demands STARTTLS and AUTH (aiosmtpd with a
certificate made for the test): the mail goes through encrypted and authenticated; a wrong password,
or a relay that offers no STARTTLS, is refused at its stage and nothing is delivered."""

from __future__ import annotations

import asyncio
import datetime
import ssl

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from parcours_channels.adapters.mail.session import SmtpReply, SmtpSession

USER, PASSWORD = "mailer", "s3cret"


def _self_signed(directory) -> tuple[str, str]:
    """A certificate for localhost and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "relay.pem", directory / "relay.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class _Relay:
    """What the relay saw: the sessions' TLS and logins, and the messages it took."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes, bool, str | None]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                              session.ssl is not None, session.auth_data))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (USER.encode(),
                                                                                           PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=USER if ok else None)


@pytest.fixture
async def relay(tmp_path, monkeypatch):
    """A relay on localhost that wants STARTTLS before anything and AUTH before MAIL; the client trusts its
    certificate through SSL_CERT_FILE (what `ssl.create_default_context` reads)."""
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = _Relay()
    loop = asyncio.get_running_loop()

    def relay_with(starttls: bool):
        return lambda: SMTP(handler, hostname="relay.test", tls_context=context if starttls else None,
                            require_starttls=starttls, authenticator=_authenticator, auth_require_tls=starttls,
                            loop=loop)

    servers = [await loop.create_server(relay_with(starttls), "localhost", 0) for starttls in (True, False)]
    handler.port, handler.plain_port = (server.sockets[0].getsockname()[1] for server in servers)
    yield handler
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_mail_goes_through_starttls_and_auth(relay):
    session = await SmtpSession.open(host="localhost", port=relay.port, local_hostname="parcours.test", timeout=5,
                                     starttls=True, username=USER, password=PASSWORD)
    try:
        refused = await session.send("noreply@parcours.test", ["ap@client.example"],
                                     b"Subject: F-1\r\n\r\nHello\r\n.starts with a dot\r\n")
    finally:
        await session.quit()
    assert refused == []
    [(sender, recipients, content, encrypted, login)] = relay.messages
    assert (sender, recipients, encrypted, login) == ("noreply@parcours.test", ["ap@client.example"], True, USER)
    assert content == b"Subject: F-1\r\n\r\nHello\r\n.starts with a dot\r\n", "dot-stuffing undone by the relay"


async def test_a_wrong_password_is_refused_at_auth_and_nothing_is_sent(relay):
    with pytest.raises(SmtpReply) as refused:
        await SmtpSession.open(host="localhost", port=relay.port, local_hostname="parcours.test", timeout=5,
                               starttls=True, username=USER, password="guessed")
    assert (refused.value.stage, refused.value.code) == ("auth", 535)
    assert relay.messages == []


async def test_starttls_asked_of_a_relay_without_it_is_refused_before_any_credential(relay):
    with pytest.raises(SmtpReply) as refused:
        await SmtpSession.open(host="localhost", port=relay.plain_port, local_hostname="parcours.test", timeout=5,
                               starttls=True, username=USER, password=PASSWORD)
    assert refused.value.stage == "starttls"
    assert relay.messages == []

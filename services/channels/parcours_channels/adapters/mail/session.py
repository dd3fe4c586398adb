"""One SMTP session to the relay (RFC 5321): greeting, EHLO, STARTTLS and AUTH when configured,
then mail transactions until QUIT.

When the relay advertises PIPELINING (RFC 2920), MAIL FROM, every RCPT TO and DATA go out in one
write and their answers are read afterwards: a mail costs two round trips (envelope + DATA, body)
instead of three plus one per recipient. On a loopback or LAN relay each round trip is a socket
write and a wake-up on both ends, which is most of what SMTP costs us per mail. Without the
keyword, the commands go one at a time as before."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl

_BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f<>]")  # an address must not smuggle a command or break the brackets


class SmtpReply(Exception):
    """The relay answered `code` where another was expected; `stage` says to what
    (connect, ehlo, starttls, auth, mail, rcpt, data)."""

    def __init__(self, stage: str, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.stage, self.code, self.text = stage, code, text


class SmtpSession:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float):
        self._reader, self._writer, self._timeout = reader, writer, timeout
        self.extensions: dict[str, str] = {}  # EHLO keywords (upper case) → their parameters

    @classmethod
    async def open(cls, *, host: str, port: int, local_hostname: str, timeout: float, starttls: bool = False,
                   username: str | None = None, password: str | None = None) -> SmtpSession:
        """Connect, read the greeting, EHLO (STARTTLS and EHLO again, AUTH, when asked)."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
        session = cls(reader, writer, timeout)
        try:
            await session._expect("connect", 220)
            await session._ehlo(local_hostname)
            if starttls:
                if "STARTTLS" not in session.extensions:
                    raise SmtpReply("starttls", 502, "the relay does not offer STARTTLS")
                await session._command("starttls", b"STARTTLS\r\n", 220)
                async with asyncio.timeout(timeout):
                    await writer.start_tls(ssl.create_default_context(), server_hostname=host)
                await session._ehlo(local_hostname)
            if username is not None:
                await session._login(username, password or "")
        except BaseException:
            session.close()
            raise
        return session

    @property
    def is_connected(self) -> bool:
        """False also once the relay has closed its end (an idle session it dropped)."""
        return not self._writer.is_closing() and not self._reader.at_eof()

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.extensions

    async def send(self, sender: str, recipients: list[str], wire: bytes) -> list[SmtpReply]:
        """One mail transaction; the recipients refused when others were accepted. SmtpReply
        (stage mail, rcpt when all were refused, data) when the relay does not take the mail: the
        envelope is reset then, so the session can carry the next one unless the answer was 421."""
        envelope = [b"MAIL FROM:<%s>\r\n" % _address(sender)]
        envelope += [b"RCPT TO:<%s>\r\n" % _address(recipient) for recipient in recipients]
        envelope.append(b"DATA\r\n")
        stages = ["mail", *(["rcpt"] * len(recipients)), "data"]
        replies: list[tuple[int, str]] = []
        if self.pipelining:
            self._writer.write(b"".join(envelope))
        for i, command in enumerate(envelope):
            if not self.pipelining:
                if i == 1 and replies[0][0] != 250 or i == len(envelope) - 1 and not _accepted(replies[1:]):
                    break  # no envelope, or nobody to send to: what follows would only be refused
                self._writer.write(command)
            replies.append(reply := await self._reply())
            if reply[0] == 421:  # the relay is closing the session: no more answers will come
                self.close()
                raise SmtpReply(stages[i], *reply)
        rcpts = replies[1:len(recipients) + 1]
        refused = [SmtpReply("rcpt", code, text) for code, text in rcpts if code not in (250, 251)]
        data = replies[len(recipients) + 1:]
        if replies[0][0] != 250:
            await self._reset(data)
            raise SmtpReply("mail", *replies[0])
        if len(refused) == len(recipients):
            await self._reset(data)
            raise refused[0]
        if data[0][0] != 354:
            await self._reset([])
            raise SmtpReply("data", *data[0])
        self._writer.write(_data_block(wire))
        code, text = await self._reply()
        if code == 421:
            self.close()
        elif code != 250:
            await self._reset([])
        if code != 250:
            raise SmtpReply("data", code, text)
        return refused

    async def quit(self) -> None:
        try:
            self._writer.write(b"QUIT\r\n")
            await self._reply()
        finally:
            self.close()

    def close(self) -> None:
        self._writer.close()

    async def _reset(self, data_reply: list[tuple[int, str]]) -> None:
        """Leave the session clean after a refusal (RSET); a 354 to a pipelined DATA with nobody
        to send to is closed with an empty message first (RFC 2920 §3.1)."""
        if data_reply and data_reply[0][0] == 354:
            self._writer.write(b".\r\n")
            await self._reply()
        self._writer.write(b"RSET\r\n")
        await self._reply()

    async def _ehlo(self, local_hostname: str) -> None:
        self._writer.write(b"EHLO %s\r\n" % local_hostname.encode("ascii"))
        code, text = await self._reply()
        if code != 250:  # an old relay: HELO, no extensions
            await self._command("ehlo", b"HELO %s\r\n" % local_hostname.encode("ascii"), 250)
            self.extensions = {}
            return
        keywords = (line.partition(" ") for line in text.splitlines()[1:])
        self.extensions = {keyword.upper(): parameters for keyword, _, parameters in keywords}

    async def _login(self, username: str, password: str) -> None:
        methods = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in methods:
            token = base64.b64encode(f"\0{username}\0{password}".encode())
            await self._command("auth", b"AUTH PLAIN %s\r\n" % token, 235)
        elif "LOGIN" in methods:
            await self._command("auth", b"AUTH LOGIN\r\n", 334)
            await self._command("auth", base64.b64encode(username.encode()) + b"\r\n", 334)
            await self._command("auth", base64.b64encode(password.encode()) + b"\r\n", 235)
        else:
            raise SmtpReply("auth", 504, f"the relay offers no AUTH method we speak ({' '.join(methods) or 'none'})")

    async def _command(self, stage: str, line: bytes, expected: int) -> str:
        self._writer.write(line)
        return await self._expect(stage, expected)

    async def _expect(self, stage: str, expected: int) -> str:
        code, text = await self._reply()
        if code != expected:
            raise SmtpReply(stage, code, text)
        return text

    async def _reply(self) -> tuple[int, str]:
        """One (possibly multi-line) reply: its code and its text, lines joined by \\n."""
        lines = []
        async with asyncio.timeout(self._timeout):
            while True:
                line = await self._reader.readline()
                if not line.endswith(b"\n"):
                    raise ConnectionResetError("the SMTP relay closed the session")
                if len(line) < 4 or not line[:3].isdigit() or line[3:4] not in (b" ", b"-", b"\r", b"\n"):
                    raise ConnectionResetError(f"malformed SMTP reply {line[:80]!r}")
                lines.append(line[4:].strip().decode("utf-8", "replace"))
                if line[3:4] != b"-":
                    return int(line[:3]), "\n".join(lines)


def _accepted(rcpt_replies: list[tuple[int, str]]) -> bool:
    return any(code in (250, 251) for code, _ in rcpt_replies)


def _address(address: str) -> bytes:
    if _FORBIDDEN.search(address):
        raise ValueError(f"not a mailbox for an SMTP envelope: {address!r}")
    return address.encode("ascii")  # no SMTPUTF8: a non-ASCII mailbox is refused here, as before


def _data_block(wire: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, dot-stuffed, ended by a lone dot."""
    crlf = wire.count(b"\r\n")
    if wire.count(b"\r") != crlf or wire.count(b"\n") != crlf:  # our messages never have bare ends: no regex pass
        wire = _BARE_LINE_END.sub(b"\r\n", wire)
    if not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    if wire.startswith(b"."):
        wire = b"." + wire
    return wire.replace(b"\r\n.", b"\r\n..") + b".\r\n"

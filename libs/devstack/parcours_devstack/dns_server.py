"""A real authoritative DNS server on loopback (UDP) answering TXT queries from an in-memory
zone: what the sender-domain check resolves against in tests and the dev stack, offline.

    async with TxtZoneServer({"acme.example": ["v=spf1 include:spf.parcours.localhost ~all"]}) as dns:
        ...  # resolver pointed at dns.host, dns.port
        dns.set("_dmarc.acme.example", "v=DMARC1; p=reject")

Other names get NXDOMAIN; other types at a known name get an empty answer (NOERROR)."""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 60
_STRING_MAX = 255  # one TXT character-string


class TxtZoneServer:
    def __init__(self, records: dict[str, list[str]] | None = None, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.queries: list[tuple[str, str]] = []  # (name, type) in arrival order
        self._records: dict[dns.name.Name, list[str]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        for name, values in (records or {}).items():
            self.set(name, *values)

    def set(self, name: str, *values: str) -> None:
        """Publish `values` as the TXT records of `name` (none: the name stops existing)."""
        key = dns.name.from_text(name)
        if values:
            self._records[key] = list(values)
        else:
            self._records.pop(key, None)

    async def start(self) -> TxtZoneServer:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self),
                                                                 local_addr=(self.host, self.port))
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> TxtZoneServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - garbage on the socket gets no answer, as from a real server
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            self.queries.append((question.name.to_text(omit_final_dot=True), dns.rdatatype.to_text(question.rdtype)))
            values = self._records.get(question.name)
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                texts = [" ".join(_quoted(value[i:i + _STRING_MAX]) for i in range(0, len(value), _STRING_MAX))
                         for value in values]
                response.answer.append(dns.rrset.from_text_list(question.name, TTL, dns.rdataclass.IN,
                                                                dns.rdatatype.TXT, texts))
        return response.to_wire()


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: TxtZoneServer):
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self._transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        reply = self._server.answer(data)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

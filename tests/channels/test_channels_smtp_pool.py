"""The SMTP pool and its throttles against a real SMTP server (the sink, which counts its sessions):
sessions kept and reused, what a 421 and a 550 do to them, sessions per domain capped, sends to a
domain and of a tenant paced, idle sessions closed. Each test runs against a relay that offers
PIPELINING (the envelope goes in one write) and one that does not (a command at a time)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from parcours_channels.adapters import RecipientRefused, TransientDeliveryError
from parcours_channels.adapters.mail.compose import ComposedMessage, compose_message
from parcours_channels.adapters.mail.render import RenderedEmail
from parcours_channels.adapters.mail.session import SmtpReply, SmtpSession
from parcours_channels.adapters.mail.smtp import SmtpPool
from parcours_channels.config import Settings
from parcours_contracts import Recipient


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def sink(request, sink):
    sink.pipelining = request.param
    return sink


def pool_for(sink, **settings) -> SmtpPool:
    return SmtpPool(Settings(smtp_port=sink.smtp_port, **settings))


def mail(to: str) -> ComposedMessage:
    return compose_message(rendered=RenderedEmail(subject=f"for {to}", text="hello", html="<p>hello</p>", language="en"),
                           sender="Parcours <invoices@parcours.localhost>", recipient=Recipient(email=to),
                           message_id=f"<{to}@parcours.localhost>")


async def send_all(pool: SmtpPool, addresses: list[str], tenant_id: str = "acme") -> None:
    await asyncio.gather(*(pool.send(mail(a), tenant_id=tenant_id) for a in addresses))


def accepted_at(sink, domain: str) -> list[datetime]:
    return sorted(datetime.fromisoformat(m.received_at) for m in sink.select() if m.rcpt_tos[0].endswith(domain))


async def test_sessions_are_kept_open_and_reused_message_after_message(sink, eventually):
    pool = pool_for(sink, smtp_concurrency=4)
    try:
        await send_all(pool, [f"r{i}@buyer.example" for i in range(40)])
        await send_all(pool, [f"s{i}@other.example" for i in range(20)])
    finally:
        await pool.close()

    assert len(sink.messages()) == 60
    assert 1 <= sink.connections_opened <= 4, "never more sessions than smtp_concurrency, whatever the count of mails"
    assert pool.sessions_opened == sink.connections_opened
    await eventually(lambda: _true(sink.open_connections == 0), what="sessions closed by close()")


async def test_a_421_closes_the_session_and_the_next_send_reconnects(sink, eventually):
    pool = pool_for(sink, smtp_concurrency=1)
    try:
        await pool.send(mail("first@buyer.example"), tenant_id="acme")
        sink.reject_next(1, 421, "4.3.2 Service shutting down")
        with pytest.raises(TransientDeliveryError, match="421"):
            await pool.send(mail("second@buyer.example"), tenant_id="acme")
        await eventually(lambda: _true(sink.open_connections == 0), what="the 421 session gone on both ends")
        await pool.send(mail("second@buyer.example"), tenant_id="acme")
    finally:
        await pool.close()

    assert [m["rcpt_tos"][0] for m in sink.messages()] == ["first@buyer.example", "second@buyer.example"]
    assert sink.connections_opened == 2


@pytest.mark.parametrize("stage", ["rcpt", "data"])
async def test_a_550_refuses_the_recipient_for_good_and_the_session_stays_in_use(sink, stage):
    pool = pool_for(sink, smtp_concurrency=1)
    try:
        await pool.send(mail("first@buyer.example"), tenant_id="acme")
        sink.reject_next(1, 550, "5.1.1 No such mailbox", stage=stage)
        with pytest.raises(RecipientRefused, match="550 5.1.1 No such mailbox"):
            await pool.send(mail("gone@buyer.example"), tenant_id="acme")
        await pool.send(mail("third@buyer.example"), tenant_id="acme")
    finally:
        await pool.close()

    assert [m["rcpt_tos"][0] for m in sink.messages()] == ["first@buyer.example", "third@buyer.example"]
    assert sink.connections_opened == 1, "the refusal left the session clean: no reconnect"


async def test_sessions_to_one_domain_are_capped_while_other_domains_proceed(sink):
    sink.data_delay = 0.15  # a slow receiver: sends overlap
    busy = [f"r{i}@busy.example" for i in range(6)]

    pool = pool_for(sink, smtp_concurrency=8, smtp_max_per_domain=2)
    try:
        await send_all(pool, busy + [f"r{i}@other.example" for i in range(4)])
    finally:
        await pool.close()
    assert len(sink.messages()) == 10
    assert sink.peak_sessions("busy.example") == 2
    assert sink.peak_sessions("other.example") == 2

    sink.reset_counts()
    uncapped = pool_for(sink, smtp_concurrency=8)
    try:
        await send_all(uncapped, busy)
    finally:
        await uncapped.close()
    assert sink.peak_sessions("busy.example") > 2, "without the cap the same sends overlap more: the cap did it"


async def test_sends_to_a_domain_are_spread_at_its_rate_and_other_domains_do_not_wait(sink):
    rate = 4  # per second, bursts of 1
    pool = pool_for(sink, smtp_concurrency=8, smtp_domain_rate=rate)
    try:
        paced = asyncio.ensure_future(send_all(pool, [f"r{i}@paced.example" for i in range(8)]))
        await asyncio.sleep(0.05)
        await pool.send(mail("first@elsewhere.example"), tenant_id="acme")
        await paced
    finally:
        await pool.close()

    times = accepted_at(sink, "paced.example")
    assert len(times) == 8
    first_second = [t for t in times if (t - times[0]).total_seconds() < 1]
    assert len(first_second) <= rate + 1, "the first second holds at most its rate's worth plus the burst"
    (elsewhere,) = accepted_at(sink, "elsewhere.example")
    assert elsewhere < times[-1], "another domain's send went ahead of the paced domain's queue"


async def test_a_tenant_is_paced_across_domains_and_does_not_hold_up_another_tenant(sink):
    rate = 4
    pool = pool_for(sink, smtp_concurrency=8, smtp_tenant_rate=rate)
    try:
        busy = asyncio.ensure_future(send_all(pool, [f"r{i}@d{i}.example" for i in range(8)], tenant_id="busy"))
        await asyncio.sleep(0.05)
        await pool.send(mail("one@quiet.example"), tenant_id="quiet")
        await busy
    finally:
        await pool.close()

    times = sorted(datetime.fromisoformat(m.received_at) for m in sink.select() if m.rcpt_tos[0] != "one@quiet.example")
    assert len(times) == 8
    assert len([t for t in times if (t - times[0]).total_seconds() < 1]) <= rate + 1
    (quiet,) = sink.select(rcpt="one@quiet.example")
    assert datetime.fromisoformat(quiet.received_at) < times[-1]


async def test_idle_sessions_are_closed_after_smtp_idle_seconds(sink, eventually):
    pool = pool_for(sink, smtp_concurrency=2, smtp_idle_seconds=0.3)
    try:
        await pool.send(mail("first@buyer.example"), tenant_id="acme")
        assert sink.open_connections == 1
        await eventually(lambda: _true(sink.open_connections == 0), timeout=5, what="the idle session closed")
        await pool.send(mail("second@buyer.example"), tenant_id="acme")
    finally:
        await pool.close()
    assert sink.connections_opened == pool.sessions_opened == 2


async def open_session(sink) -> SmtpSession:
    return await SmtpSession.open(host="127.0.0.1", port=sink.smtp_port, local_hostname="parcours.localhost",
                                  timeout=5)


async def test_the_session_pipelines_only_when_the_relay_offers_it(sink):
    session = await open_session(sink)
    try:
        assert session.pipelining is sink.pipelining
        assert "SIZE" in session.extensions
    finally:
        await session.quit()
    assert not session.is_connected


async def test_some_recipients_refused_the_others_get_the_mail_and_the_session_goes_on(sink):
    session = await open_session(sink)
    try:
        sink.reject_next(1, 550, "5.1.1 No such mailbox")
        refused = await session.send("bounces@parcours.localhost", ["gone@buyer.example", "ok@buyer.example"],
                                     b"Subject: two\r\n\r\n.leading dot\r\nbody\r\n")
        assert [(r.stage, r.code) for r in refused] == [("rcpt", 550)]
        sink.reject_next(2, 550, "5.1.1 No such mailbox")
        with pytest.raises(SmtpReply) as everyone:
            await session.send("bounces@parcours.localhost", ["a@buyer.example", "b@buyer.example"], b"x\r\n")
        assert (everyone.value.stage, everyone.value.code) == ("rcpt", 550)
        sink.reject_next(1, 554, "5.6.0 Content refused", stage="data")
        with pytest.raises(SmtpReply) as data:
            await session.send("bounces@parcours.localhost", ["c@buyer.example"], b"x\r\n")
        assert (data.value.stage, data.value.code) == ("data", 554)
        await session.send("bounces@parcours.localhost", ["d@buyer.example"], b"Subject: last\n\nbare ends")
    finally:
        await session.quit()

    first, last = sink.messages()
    assert first["rcpt_tos"] == ["ok@buyer.example"] and first["mail_from"] == "bounces@parcours.localhost"
    assert first["raw"].endswith(b"\r\n.leading dot\r\nbody\r\n"), "dot-stuffed on the wire, unstuffed by the relay"
    assert last["rcpt_tos"] == ["d@buyer.example"] and b"Subject: last\r\n\r\nbare ends" in last["raw"]
    assert sink.connections_opened == 1


async def _true(value: bool) -> bool:
    return value


async def test_messages_composed_when_a_session_is_free_are_never_more_than_the_sessions(sink):
    pool = pool_for(sink, smtp_concurrency=3)
    composed, alive, most = [], 0, 0

    def later(to: str):
        def compose() -> ComposedMessage:
            nonlocal alive, most
            alive += 1
            most = max(most, alive)
            composed.append(to)
            return mail(to)
        return compose

    async def sent() -> None:
        nonlocal alive
        alive -= 1

    addresses = [f"b{i}@buyer.example" for i in range(30)]
    try:
        await asyncio.gather(*(pool.send(later(a), tenant_id="acme", recipients=[a], on_accepted=sent)
                               for a in addresses))
        with pytest.raises(TypeError, match="needs its recipients"):
            await pool.send(later("x@buyer.example"), tenant_id="acme")
    finally:
        await pool.close()
    assert sorted(composed) == sorted(addresses) and len(sink.messages()) == 30
    assert most <= 3, f"{most} messages composed and waiting at once for 3 sessions"


async def test_a_message_being_recorded_leaves_its_session_to_the_next(sink):
    """Recording an acceptance (the send ledger's group commit) does not hold the session: with one session,
    the second message goes while the first is still being recorded."""
    pool = pool_for(sink, smtp_concurrency=1)
    second_sent = asyncio.Event()

    async def record_first() -> None:
        await asyncio.wait_for(second_sent.wait(), timeout=10)

    async def record_second() -> None:
        second_sent.set()

    try:
        await asyncio.gather(
            pool.send(mail("first@buyer.example"), tenant_id="acme", on_accepted=record_first),
            pool.send(mail("second@buyer.example"), tenant_id="acme", on_accepted=record_second))
    finally:
        await pool.close()
    assert len(sink.messages()) == 2 and sink.connections_opened == 1

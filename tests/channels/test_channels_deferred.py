"""Recipients the relay puts off (SMTP 4xx: greylisting, a busy server) are retried by the deferred
schedule, not by redelivering the event: delivered once when the relay accepts, reported once when
every recipient is settled, given up (permanent DispatchFailed, so router falls back) when the
attempts run out or a retry is refused for good."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from parcours_channels.store.deferrals import DeferredDispatch
from parcours_channels.store.sends import Send
from parcours_contracts import DispatchFailed, DispatchRequested, InvoiceDispatched, Recipient

QUICK_RETRIES = {"smtp_retry_first_seconds": 0.2, "smtp_retry_poll_seconds": 0.1, "smtp_retry_attempts": 3}


async def ledger(channels, dispatch_id) -> dict[str, Send]:
    async with channels.host.ctx.sessions() as session:
        return {row.recipient: row for row in await session.scalars(select(Send).where(Send.dispatch_id == dispatch_id))}


async def deferrals(channels) -> list[DeferredDispatch]:
    async with channels.host.ctx.sessions() as session:
        return list(await session.scalars(select(DeferredDispatch)))


async def outcome_of(channels, eventually):
    """The dispatch's one outcome, once every deferral is settled (call after the event was handled)."""
    async def settled() -> bool:
        return await deferrals(channels) == []

    await eventually(settled, what="every deferred dispatch settled")
    await channels.settle()
    (outcome,) = await channels.outcomes()  # reported once
    return outcome


@pytest.mark.parametrize("code", [421, 451])
async def test_a_greylisted_recipient_is_retried_later_and_delivered_exactly_once(start_channels, sink, make_dispatch,
                                                                                  eventually, code):
    channels = await start_channels(**QUICK_RETRIES)
    request = make_dispatch(recipients=[Recipient(email="jeanne@greylisting.example")])
    sink.reject_next(2, code, "4.7.1 Greylisted, try again later")  # the first attempt and the first retry
    await channels.publish(request)
    await channels.settle()
    assert channels.host.consumer_of(DispatchRequested).dead_lettered == 0, "the event is recorded, not dead-lettered"

    outcome = await outcome_of(channels, eventually)
    (message,) = sink.messages()
    assert isinstance(outcome, InvoiceDispatched)
    assert [(m.recipient, m.message_id) for m in outcome.messages] == [("jeanne@greylisting.example",
                                                                        message["message_id"])]
    (row,) = (await ledger(channels, request.dispatch_id)).values()
    assert (row.state, row.attempts, row.next_attempt_at) == ("sent", 3, None)


async def test_the_outcome_waits_for_the_put_off_recipient_and_names_everyone_sent(start_channels, sink,
                                                                                 make_dispatch, eventually):
    channels = await start_channels(**QUICK_RETRIES)
    request = make_dispatch()  # two recipients, one of them put off once
    sink.reject_next(1, 451)
    await channels.publish(request)
    await channels.settle()

    outcome = await outcome_of(channels, eventually)
    received = sink.messages()
    assert len(received) == 2
    assert isinstance(outcome, InvoiceDispatched)
    assert {(m.recipient, m.message_id) for m in outcome.messages} == {(m["rcpt_tos"][0], m["message_id"])
                                                                       for m in received}


async def test_exhausted_retries_fail_the_dispatch_for_good_so_router_falls_back(start_channels, sink, make_dispatch,
                                                                                 eventually):
    channels = await start_channels(**QUICK_RETRIES)
    request = make_dispatch(recipients=[Recipient(email="busy@buyer.example")], fallback_channels=["postal"])
    sink.reject_next(10, 451, "4.2.1 Mailbox busy")
    await channels.publish(request)
    await channels.settle()

    outcome = await outcome_of(channels, eventually)
    assert sink.messages() == []
    assert isinstance(outcome, DispatchFailed)
    assert (outcome.permanent, outcome.fallback_channels) == (True, ["postal"])
    assert "busy@buyer.example" in outcome.reason and "gave up after 3 attempt(s)" in outcome.reason
    assert "451 4.2.1 Mailbox busy" in outcome.reason
    (row,) = (await ledger(channels, request.dispatch_id)).values()
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 3, None)


async def test_a_retry_refused_for_good_fails_the_dispatch_without_more_attempts(start_channels, sink, make_dispatch,
                                                                                 eventually):
    channels = await start_channels(**QUICK_RETRIES)
    request = make_dispatch(recipients=[Recipient(email="gone@buyer.example")])
    sink.reject_next(1, 451)
    await channels.publish(request)
    await channels.settle()
    sink.reject_next(1, 550, "5.1.1 No such mailbox")  # what the retry hears

    outcome = await outcome_of(channels, eventually)
    assert isinstance(outcome, DispatchFailed) and outcome.permanent
    assert "550 5.1.1 No such mailbox" in outcome.reason
    (row,) = (await ledger(channels, request.dispatch_id)).values()
    assert (row.state, row.attempts) == ("failed", 2)


async def test_a_redelivered_dispatch_leaves_put_off_recipients_to_the_retries(start_channels, sink, make_dispatch,
                                                                             eventually):
    channels = await start_channels(**{**QUICK_RETRIES, "smtp_retry_first_seconds": 1.0})
    request = make_dispatch(recipients=[Recipient(email="jeanne@buyer.example")])
    sink.reject_next(1, 451)
    await channels.publish(request)
    await channels.settle()
    await channels.publish(request.model_copy(update={"event_id": uuid.uuid4()}))  # the same dispatch again
    await channels.settle()

    outcome = await outcome_of(channels, eventually)
    assert isinstance(outcome, InvoiceDispatched)
    assert len(sink.messages()) == 1, "sent by the retry only"
    (row,) = (await ledger(channels, request.dispatch_id)).values()
    assert row.attempts == 3, "the first attempt, the redelivery's claim (which sent nothing), the retry"

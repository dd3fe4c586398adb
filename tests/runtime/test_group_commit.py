"""Group commit: concurrent submissions share one write; each caller gets its own result or the group's failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from parcours_runtime.group_commit import GroupCommit


def _recording_writer() -> tuple[list[list[int]], Callable[[list[int]], Awaitable[list[int]]]]:
    """A writer that keeps each group it is given and answers every item with itself."""
    groups: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        groups.append(items)
        return items

    return groups, write


async def test_concurrent_items_are_written_together_and_answered_one_by_one():
    groups: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        groups.append(items)
        await asyncio.sleep(0)
        return [item * 10 for item in items]

    committer = GroupCommit(write, window_seconds=0.01, max_items=50)
    results = await asyncio.gather(*(committer.submit(i) for i in range(120)))
    assert results == [i * 10 for i in range(120)]
    assert [len(group) for group in groups] == [50, 50, 20], "full groups go at once, the rest after the window"


async def test_a_failed_write_fails_every_caller_of_its_group_and_the_next_group_is_unharmed():
    async def write(items: list[str]) -> list[str]:
        if "bad" in items:
            raise RuntimeError("constraint violated")
        return items

    committer = GroupCommit(write, window_seconds=0.01)
    outcomes = await asyncio.gather(committer.submit("a"), committer.submit("bad"), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert await committer.submit("c") == "c"


async def test_a_write_returning_the_wrong_number_of_results_is_an_error():
    async def write(items: list[int]) -> list[int]:
        return []

    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await GroupCommit(write).submit(1)


async def test_one_at_a_time_groups_never_overlap_and_what_arrives_meanwhile_goes_next_together():
    groups: list[list[int]] = []
    writing = 0
    release = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        nonlocal writing
        writing += 1
        assert writing == 1, "one group at a time"
        groups.append(items)
        if len(groups) == 1:
            await release.wait()  # the first commit is slow
        writing -= 1
        return items

    committer = GroupCommit(write, window_seconds=0.001, max_items=4, max_in_flight=1)
    first = asyncio.create_task(committer.submit(0))
    await asyncio.sleep(0.01)
    assert groups == [[0]]
    later = [asyncio.create_task(committer.submit(i)) for i in range(1, 7)]
    await asyncio.sleep(0.01)
    assert groups == [[0]], "nothing else is written while a group is"
    release.set()
    assert await asyncio.gather(first, *later) == list(range(7))
    assert groups == [[0], [1, 2, 3, 4], [5, 6]], "the waiting items go together, at most max_items a group"


async def test_two_in_flight_overlap_two_groups_never_three_and_the_rest_waits():
    writing, most = 0, 0
    groups: list[list[int]] = []
    release = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        nonlocal writing, most
        writing += 1
        most = max(most, writing)
        groups.append(items)
        await release.wait()
        writing -= 1
        return items

    committer = GroupCommit(write, window_seconds=0, max_items=3, max_in_flight=2)
    first = asyncio.create_task(committer.submit(0))
    await asyncio.sleep(0.01)
    second = [asyncio.create_task(committer.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0.01)
    waiting = [asyncio.create_task(committer.submit(i)) for i in range(3, 8)]
    await asyncio.sleep(0.01)
    assert groups == [[0], [1, 2]], "two groups are written at once; what comes next waits"
    release.set()
    assert await asyncio.gather(first, *second, *waiting) == list(range(8))
    assert most == 2 and groups[2:] == [[3, 4, 5], [6, 7]]


async def test_drain_writes_the_group_still_forming():
    groups, write = _recording_writer()
    committer = GroupCommit(write, window_seconds=3600, max_in_flight=1)
    waiting = [asyncio.create_task(committer.submit(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    assert groups == []
    await committer.drain()
    assert groups == [[0, 1, 2]] and [task.result() for task in waiting] == [0, 1, 2]


async def test_a_window_paced_by_arrivals_closes_early_when_callers_come_close_together():
    """With `window_gaps`, steady close submissions shrink the window to a few of their gaps: a 30 s
    window would otherwise hold every group for 30 s."""
    groups, write = _recording_writer()
    committer = GroupCommit(write, window_seconds=30, window_gaps=2)
    callers = []
    for i in range(80):
        callers.append(asyncio.create_task(committer.submit(i)))
        await asyncio.sleep(0.001)
    assert await asyncio.wait_for(asyncio.gather(*callers), timeout=10) == list(range(80))
    assert sum(map(len, groups)) == 80 and len(groups) > 1


async def test_a_window_paced_by_arrivals_still_waits_its_full_length_for_a_lone_caller():
    written = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        written.set()
        return items

    committer = GroupCommit(write, window_seconds=0.3, window_gaps=2)
    caller = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0.1)
    assert not written.is_set(), "nothing came close to it: the group waits for others as long as the window"
    assert await caller == 1


async def test_a_window_paced_by_arrivals_of_zero_takes_what_the_loop_turn_read():
    groups, write = _recording_writer()
    committer = GroupCommit(write, window_seconds=0, window_gaps=2)
    assert await asyncio.gather(*(committer.submit(i) for i in range(5))) == list(range(5))
    assert groups == [[0, 1, 2, 3, 4]]

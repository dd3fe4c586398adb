"""Group commit: concurrent submissions share one write; each caller gets its own result or the group's failure."""

from __future__ import annotations

import asyncio

import pytest

from parcours_runtime.group_commit import GroupCommit


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

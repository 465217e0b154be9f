"""Originals on disk: kept for the 📄 button, pruned by age and by total size."""

from __future__ import annotations

import os
import time

from bot.originals import OriginalsStore


async def test_prune_by_age_and_size(tmp_path):
    store = OriginalsStore(tmp_path, max_age_hours=1, max_total_mb=1)
    store.open()
    old = await store.save("old", b"x" * 1000, "png")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    first = await store.save("first", b"a" * 600_000, "png")
    os.utime(first, (time.time() - 60, time.time() - 60))
    await store.save("second", b"b" * 600_000, "png")  # together over 1 MB: the oldest goes
    assert store.find("old") is None and store.find("first") is None
    assert store.find("second").read_bytes() == b"b" * 600_000
    assert not list(tmp_path.glob("*.part"))


async def test_byte_budget_holds_downloads_back_until_there_is_room():
    import asyncio

    from bot.imagegen import ByteBudget

    budget = ByteBudget(100)
    first, second = await budget.acquire(40), await budget.acquire(40)
    third = asyncio.ensure_future(budget.acquire(40))
    await asyncio.sleep(0.05)
    assert not third.done()  # 120 would be over the budget
    await first.release()
    lease = await asyncio.wait_for(third, 1)
    await first.release()  # a second release gives nothing back twice
    huge = asyncio.ensure_future(budget.acquire(500))  # larger than the whole budget: waits until it is empty
    await asyncio.sleep(0.05)
    assert not huge.done()
    await second.release()
    await lease.release()
    await (await asyncio.wait_for(huge, 1)).release()
